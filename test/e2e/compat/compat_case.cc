#include "test/e2e/compat/compat_case.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "test/e2e/harness/sock_util.h"

namespace shunt::e2e::compat {

absl::StatusOr<Pair> Connect(CaseEnv& env, const std::function<void(int)>& before,
                             const std::function<void(int)>& listen_before, int client_protocol) {
  Pair p;
  auto l = env.node.PodSocket(env.server, SOCK_STREAM);
  if (!l.ok()) return l.status();
  p.listener = std::move(*l);
  int one = 1;
  setsockopt(p.listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(env.port);
  if (bind(p.listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return lib::ErrnoStatus(errno, "bind");
  if (listen_before) listen_before(p.listener.get());
  if (listen(p.listener.get(), 16) != 0) return lib::ErrnoStatus(errno, "listen");
  auto c = env.node.PodSocket(env.client, SOCK_STREAM, AF_INET, client_protocol);
  if (!c.ok()) return c.status();
  p.client = std::move(*c);
  if (before) before(p.client.get());
  if (auto s = ConnectTo(p.client.get(), env.server.ip, env.port); !s.ok()) return s;
  auto s = AcceptOne(p.listener.get());
  if (!s.ok()) return s.status();
  p.server = std::move(*s);
  return p;
}

absl::Status Exchange(Pair& p, size_t n) {
  const std::string request = RandomBytes(n, 11), response = RandomBytes(n, 12);
  if (auto s = WriteAll(p.client.get(), request); !s.ok()) return s;
  auto got = ReadExactly(p.server.get(), n);
  if (!got.ok()) return got.status();
  if (*got != request) return absl::DataLossError("exchange: the request arrived altered");
  if (auto s = WriteAll(p.server.get(), response); !s.ok()) return s;
  auto back = ReadExactly(p.client.get(), n);
  if (!back.ok()) return back.status();
  if (*back != response) return absl::DataLossError("exchange: the response arrived altered");
  return absl::OkStatus();
}

absl::StatusOr<std::string> Transfer(Pair& p, const std::string& data) {
  absl::StatusOr<std::string> got = absl::UnknownError("not read");
  std::thread reader([&] { got = ReadExactly(p.server.get(), data.size(), 60000); });
  absl::Status wrote = WriteAll(p.client.get(), data, 60000);
  reader.join();
  if (!wrote.ok()) return wrote;
  return got;
}

std::string Digest(const std::string& data) {
  return absl::StrCat(data.size(), " bytes, fnv ", Fnv1a(data));
}

std::string Result(long n) {
  if (n >= 0) return absl::StrCat(n);
  return absl::StrCat("errno ", strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

}  // namespace shunt::e2e::compat
