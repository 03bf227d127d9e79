#include "api_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::api {
namespace {

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return absl::InvalidArgumentError(absl::StrCat("api socket path too long: ", path));
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool WaitFor(int fd, short events, int timeout_ms) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, timeout_ms) == 1;
}

}  // namespace

absl::StatusOr<ApiServer> ApiServer::Listen(const std::string& path, Handler handler) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (access(path.c_str(), F_OK) == 0) {
    if (ApiCall(path, "ping", 500).ok())
      return absl::FailedPreconditionError(
          absl::StrCat("api socket ", path, ": another agent is listening there"));
    unlink(path.c_str());  // left behind by a killed agent
  }
  lib::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "api: socket");
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("api: bind ", path));
  chmod(path.c_str(), 0600);
  if (listen(fd.get(), 16) != 0) return lib::ErrnoStatus(errno, "api: listen");
  return ApiServer(path, std::move(fd), std::move(handler));
}

ApiServer::~ApiServer() {
  if (listen_.valid()) unlink(path_.c_str());
}

void ApiServer::ServePending() {
  for (;;) {
    lib::UniqueFd c(accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) return;
    // Requests are one short line; a client that sends nothing in 200 ms
    // gets nothing, so it cannot stall the agent loop.
    std::string req;
    char buf[512];
    while (req.find('\n') == std::string::npos && req.size() < 4096 &&
           WaitFor(c.get(), POLLIN, 200)) {
      ssize_t n = read(c.get(), buf, sizeof(buf));
      if (n <= 0) break;
      req.append(buf, n);
    }
    if (auto nl = req.find('\n'); nl != std::string::npos) req.resize(nl);
    std::string resp = handler_(req);
    resp.push_back('\n');
    size_t off = 0;
    while (off < resp.size() && WaitFor(c.get(), POLLOUT, 200)) {
      ssize_t n = send(c.get(), resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += n;
    }
  }
}

absl::StatusOr<std::string> ApiCall(const std::string& path, const std::string& request,
                                    int timeout_ms) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  lib::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "api: socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0)
    return absl::UnavailableError(
        absl::StrCat("agent not reachable at ", path, ": ", strerror(errno)));
  std::string req = request + "\n";
  if (send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return lib::ErrnoStatus(errno, "api: send");
  std::string out;
  char buf[65536];
  while (WaitFor(fd.get(), POLLIN, timeout_ms)) {
    ssize_t n = read(fd.get(), buf, sizeof(buf));
    if (n < 0) return lib::ErrnoStatus(errno, "api: read");
    if (n == 0) return out;
    out.append(buf, n);
  }
  return absl::DeadlineExceededError(absl::StrCat("agent at ", path, " did not answer"));
}

}  // namespace shunt::api
