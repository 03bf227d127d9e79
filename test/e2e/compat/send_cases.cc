// Send-side and connection-level features: MSG_ZEROCOPY completions, TCP
// Fast Open, an MPTCP client, half-close, reset, a writer far ahead of a
// reader that does not read, TCP_ULP (kTLS), urgent data with SIGURG.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/compat/compat_case.h"
#include "test/e2e/harness/sock_util.h"

namespace shunt::e2e::compat {
namespace {

#ifndef SO_EE_ORIGIN_ZEROCOPY
#define SO_EE_ORIGIN_ZEROCOPY 5
#endif

// SO_ZEROCOPY set before connect(), then MSG_ZEROCOPY sends: every send's
// completion arrives on the error queue (ids 0..n-1, possibly in ranges).
absl::StatusOr<Outcome> ZerocopySend(CaseEnv& env) {
  auto p = Connect(env, [](int fd) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
  });
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  constexpr int kSends = 8;
  const std::string data = RandomBytes(kSends * 65536, 31);
  std::string got;
  std::thread reader([&] {
    auto r = ReadExactly(p->server.get(), data.size());
    if (r.ok()) got = std::move(*r);
  });
  int sent = 0;
  for (int i = 0; i < kSends; ++i)
    sent += send(p->client.get(), data.data() + i * 65536, 65536, MSG_ZEROCOPY) == 65536;
  // Completions: each notification covers ids [ee_info, ee_data].
  std::vector<bool> done(kSends, false);
  int beyond = 0;
  for (int waited = 0; waited < 100 && std::count(done.begin(), done.end(), true) < kSends;) {
    char control[128];
    msghdr m{};
    m.msg_control = control;
    m.msg_controllen = sizeof(control);
    if (recvmsg(p->client.get(), &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      pollfd pf{p->client.get(), 0, 0};  // POLLERR is always reported
      poll(&pf, 1, 50);
      ++waited;
      continue;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
      auto* ee = reinterpret_cast<sock_extended_err*>(CMSG_DATA(c));
      if (ee->ee_origin != SO_EE_ORIGIN_ZEROCOPY) continue;
      for (uint32_t id = ee->ee_info; id <= ee->ee_data; ++id) {
        if (id < done.size())
          done[id] = true;
        else
          ++beyond;
      }
    }
  }
  reader.join();
  return Outcome{absl::StrCat(sent, " sends, ", std::count(done.begin(), done.end(), true),
                              " completed, ", beyond, " unknown ids, received ", Digest(got)),
                 data.size()};
}

// TCP Fast Open: the first connection gets a cookie, the second carries its
// first bytes in the SYN; the server reads both connections' bytes in order.
absl::StatusOr<Outcome> FastOpen(CaseEnv& env) {
  // Fast Open on in both pods, and no cookie from an earlier run: the
  // first connection fetches one, the second uses it.
  for (const TestPod* pod : {&env.client, &env.server}) {
    auto s = Sh("ip netns exec " + pod->netns +
                " sh -c 'sysctl -qw net.ipv4.tcp_fastopen=3 && ip tcp_metrics flush all'");
    if (!s.ok()) return s.status();
  }
  auto listener = env.node.PodSocket(env.server, SOCK_STREAM);
  if (!listener.ok()) return listener.status();
  int qlen = 16, one = 1;
  setsockopt(listener->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(listener->get(), IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen));
  if (auto s = ListenOn(listener->get(), env.port); !s.ok()) return s;
  std::string seen;
  uint64_t payload = 0;
  for (int conn = 0; conn < 2; ++conn) {
    auto c = env.node.PodSocket(env.client, SOCK_STREAM);
    if (!c.ok()) return c.status();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(env.port);
    inet_pton(AF_INET, env.server.ip.c_str(), &a.sin_addr);
    const std::string first = absl::StrCat("first-", conn), second = RandomBytes(200000, conn);
    ssize_t n = sendto(c->get(), first.data(), first.size(), MSG_FASTOPEN,
                       reinterpret_cast<sockaddr*>(&a), sizeof(a));
    auto server = AcceptOne(listener->get());
    if (!server.ok()) return server.status();
    absl::StatusOr<std::string> got = absl::UnknownError("not read");
    std::thread r([&] { got = ReadExactly(server->get(), first.size() + second.size()); });
    absl::Status wrote = WriteAll(c->get(), second);
    r.join();
    if (!wrote.ok()) return wrote;
    if (!got.ok()) return got.status();
    tcp_info info{};
    socklen_t len = sizeof(info);
    getsockopt(c->get(), IPPROTO_TCP, TCP_INFO, &info, &len);
    absl::StrAppend(&seen, "[connection ", conn, ": sendto ", Result(n), ", data in SYN ",
                    (info.tcpi_options & TCPI_OPT_SYN_DATA) ? "yes" : "no", ", in order ",
                    *got == first + second ? "yes" : "no", "]");
    payload += got->size();
  }
  return Outcome{seen, payload};
}

// An MPTCP client of a plain TCP server (it falls back to TCP on the wire).
absl::StatusOr<Outcome> MptcpClient(CaseEnv& env) {
  auto p = Connect(env, nullptr, nullptr, IPPROTO_MPTCP);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 4096); !s.ok()) return s;
  const std::string data = RandomBytes(1 << 20, 32);
  auto got = Transfer(*p, data);
  if (!got.ok()) return got.status();
  return Outcome{absl::StrCat("exchange ok, then ", Digest(*got)), data.size() + 8192};
}

// Half-close: the client's FIN ends the server's read; the server still
// answers, then closes.
absl::StatusOr<Outcome> HalfClose(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  const std::string up = RandomBytes(2 << 20, 33), down = RandomBytes(2 << 20, 34);
  std::thread w([&] {
    (void)WriteAll(p->client.get(), up);
    shutdown(p->client.get(), SHUT_WR);
  });
  auto req = ReadToEof(p->server.get());
  w.join();
  if (!req.ok()) return req.status();
  absl::StatusOr<std::string> resp = absl::UnknownError("not read");
  std::thread r([&] { resp = ReadToEof(p->client.get()); });
  absl::Status wrote = WriteAll(p->server.get(), down);
  p->server.Reset();
  r.join();
  if (!wrote.ok()) return wrote;
  if (!resp.ok()) return resp.status();
  char c;
  return Outcome{absl::StrCat("server read ", Digest(*req), " to EOF; client read ", Digest(*resp),
                              " to EOF; send after shutdown: ",
                              Result(send(p->client.get(), &c, 1, MSG_NOSIGNAL))),
                 up.size() + down.size()};
}

// An abortive close (SO_LINGER 0): the peer's next read reports the reset.
absl::StatusOr<Outcome> Reset(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  if (auto s = Exchange(*p, 65536); !s.ok()) return s;
  linger l{1, 0};
  setsockopt(p->server.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  p->server.Reset();
  pollfd pf{p->client.get(), POLLIN, 0};
  poll(&pf, 1, 5000);
  char buf[16];
  ssize_t n = recv(p->client.get(), buf, sizeof(buf), 0);
  return Outcome{absl::StrCat("read after the peer's reset: ", Result(n)), 2 * 65536};
}

// A writer that never stops and a reader that never reads: the writer is
// held back after a bounded amount, and everything written arrives.
absl::StatusOr<Outcome> WriterFarAhead(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  const std::string chunk = RandomBytes(1 << 20, 35);
  uint64_t sent = 0;
  bool held_back = false;
  while (sent < (1ull << 30)) {
    ssize_t n = send(p->client.get(), chunk.data(), chunk.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0 && errno == EAGAIN) {
      // Held back: wait a moment for a bounded sender to stay held back.
      pollfd pf{p->client.get(), POLLOUT, 0};
      if (poll(&pf, 1, 200) == 0) {
        held_back = true;
        break;
      }
      continue;
    }
    if (n <= 0) break;
    sent += n;
  }
  auto got = ReadExactly(p->server.get(), sent, 60000);
  return Outcome{
      absl::StrCat("held back before 1 GiB: ", held_back ? "yes" : "no",
                   ", reader got all written: ", got.ok() ? "yes" : got.status().ToString()),
      sent};
}

std::atomic<int> sigurg_count{0};
void CountSigurg(int) { sigurg_count.fetch_add(1); }

// Urgent data, read as telnet and FTP servers do: the server owns the socket
// for SIGURG; after a megabyte of ordinary data the client sends "abc", the
// server reads it, the client sends one urgent byte; the server gets SIGURG
// and POLLPRI, is at the mark, reads the byte with MSG_OOB, and the bytes
// after it arrive in band without it.
absl::StatusOr<Outcome> UrgentData(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  struct sigaction urg {
  }, old{};
  urg.sa_handler = CountSigurg;
  sigemptyset(&urg.sa_mask);
  sigaction(SIGURG, &urg, &old);
  sigurg_count = 0;
  fcntl(p->server.get(), F_SETOWN, getpid());
  const std::string before = RandomBytes(1 << 20, 37), after = RandomBytes(512 << 10, 38);
  auto got = Transfer(*p, before);
  if (!got.ok()) return got.status();
  std::string seen = absl::StrCat("before: ", Digest(*got));
  char buf[8] = {};
  send(p->client.get(), "abc", 3, 0);
  ssize_t n = recv(p->server.get(), buf, 3, 0);
  absl::StrAppend(&seen, "; in band '", std::string(buf, n > 0 ? n : 0), "'");
  ssize_t sent = send(p->client.get(), "!", 1, MSG_OOB);
  pollfd pf{p->server.get(), POLLPRI, 0};
  int ready = poll(&pf, 1, 5000);
  for (int i = 0; i < 500 && sigurg_count.load() == 0; ++i) poll(nullptr, 0, 10);
  int at_mark = -1;
  ioctl(p->server.get(), SIOCATMARK, &at_mark);
  char urgent = 0;
  ssize_t oob = recv(p->server.get(), &urgent, 1, MSG_OOB | MSG_DONTWAIT);
  absl::StrAppend(&seen, "; urgent send ", Result(sent), ", POLLPRI ",
                  ready == 1 && (pf.revents & POLLPRI) ? "yes" : "no", ", SIGURG ",
                  sigurg_count.load() > 0 ? "yes" : "no", ", at mark ", at_mark, ", MSG_OOB read ",
                  Result(oob), " '", std::string(oob == 1 ? 1 : 0, urgent), "'");
  send(p->client.get(), "def", 3, 0);
  n = recv(p->server.get(), buf, sizeof(buf), 0);
  absl::StrAppend(&seen, "; next in band '", std::string(buf, n > 0 ? n : 0), "'");
  got = Transfer(*p, after);
  fcntl(p->server.get(), F_SETOWN, 0);
  sigaction(SIGURG, &old, nullptr);
  if (!got.ok()) return got.status();
  return Outcome{absl::StrCat(seen, "; after: ", Digest(*got)), before.size() + after.size()};
}

// TCP_ULP "tls" (kTLS): this kernel has no CONFIG_TLS, so both runs see the
// same error; the flow takes TCP either way.
absl::StatusOr<Outcome> KtlsUlp(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  int r = setsockopt(p->client.get(), IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls"));
  std::string seen = absl::StrCat("setsockopt(TCP_ULP, tls): ", Result(r));
  const std::string data = RandomBytes(1 << 20, 36);
  auto got = Transfer(*p, data);
  if (!got.ok()) return got.status();
  return Outcome{absl::StrCat(seen, "; then ", Digest(*got)), data.size()};
}

}  // namespace

std::vector<Case> SendCases() {
  return {
      {"ZerocopySend", Path::kTcp, SHUNT_TCP_ZEROCOPY_SEND, ZerocopySend},
      {"FastOpen", Path::kTcp, SHUNT_TCP_PEER_MISSING, FastOpen},
      {"MptcpClient", Path::kTcp, SHUNT_TCP_MPTCP, MptcpClient},
      {"HalfClose", Path::kShortCircuit, 0, HalfClose},
      {"Reset", Path::kShortCircuit, 0, Reset},
      {"WriterFarAhead", Path::kShortCircuit, 0, WriterFarAhead},
      {"KtlsUlp", Path::kTcp, SHUNT_TCP_ULP, KtlsUlp},
      {"UrgentData", Path::kShortCircuit, SHUNT_TCP_URGENT, UrgentData},
  };
}

}  // namespace shunt::e2e::compat
