#include "tools/bench/connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/sock_util.h"
#include "tools/bench/blocking_io.h"

namespace shunt::bench {

namespace {
// Generous: a healthy path answers in microseconds; this only turns a stuck
// path into an error instead of a hang.
constexpr int kIoTimeoutMs = 30000;
}  // namespace

absl::StatusOr<lib::UniqueFd> ListenInPod(const e2e::TestNode& node, const e2e::TestPod& server,
                                          uint16_t port) {
  SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd fd, node.PodSocket(server, SOCK_STREAM));
  SHUNT_RETURN_IF_ERROR(e2e::ListenOn(fd.get(), port));  // binds 0.0.0.0
  return fd;
}

absl::StatusOr<Connection> Connect(const e2e::TestNode& node, const e2e::TestPod& client,
                                   const std::string& ip, uint16_t port, int listen_fd) {
  Connection c;
  SHUNT_ASSIGN_OR_RETURN(c.client, node.PodSocket(client, SOCK_STREAM));
  SHUNT_RETURN_IF_ERROR(e2e::ConnectTo(c.client.get(), ip, port));
  SHUNT_ASSIGN_OR_RETURN(c.server, e2e::AcceptOne(listen_fd, 5000));
  SHUNT_RETURN_IF_ERROR(TuneSocket(c.client.get(), kIoTimeoutMs));
  SHUNT_RETURN_IF_ERROR(TuneSocket(c.server.get(), kIoTimeoutMs));
  return c;
}

namespace {

// What the client process reports: connections made, or where it failed.
struct RateReport {
  int64_t connections = 0;
  int64_t elapsed_ns = 0;
  int err = 0;    // errno of the failure, 0 if none
  int stage = 0;  // 1 socket, 2 connect, 3 write, 4 read (the answer)
};

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// The client process: only system calls (the parent has threads).
[[noreturn]] void ClientLoop(const char* procs, const char* netns, sockaddr_in to, double seconds,
                             int report_fd) {
  RateReport r;
  int cg = open(procs, O_WRONLY | O_CLOEXEC);
  int ns = open(netns, O_RDONLY | O_CLOEXEC);
  if (cg < 0 || write(cg, "0", 1) != 1 || ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
    r.err = errno;
    (void)!write(report_fd, &r, sizeof(r));
    _exit(1);
  }
  const timeval timeout{.tv_sec = 5, .tv_usec = 0};
  const int64_t start = NowNs(), until = start + static_cast<int64_t>(seconds * 1e9);
  while (NowNs() < until) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      r.err = errno, r.stage = 1;
      break;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    char byte = 'x';
    if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
      r.err = errno, r.stage = 2;
    } else if (write(fd, &byte, 1) != 1) {
      r.err = errno, r.stage = 3;
    } else if (read(fd, &byte, 1) != 1) {
      r.err = errno ? errno : EPIPE, r.stage = 4;
    }
    close(fd);
    if (r.err) break;
    ++r.connections;
  }
  r.elapsed_ns = NowNs() - start;
  (void)!write(report_fd, &r, sizeof(r));
  _exit(0);
}

}  // namespace

absl::StatusOr<double> ConnectionRate(const e2e::TestPod& client, const std::string& ip,
                                      uint16_t port, int listen_fd, double seconds) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &to.sin_addr) != 1)
    return absl::InvalidArgumentError(absl::StrCat("connection rate: bad address ", ip));
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return lib::ErrnoStatus(errno, "connection rate: pipe");
  lib::UniqueFd report(p[0]), report_w(p[1]);
  const std::string procs = client.cgroup + "/cgroup.procs", netns = "/run/netns/" + client.netns;
  // The far ends: accepted, answered, closed, until the client is done.
  std::atomic<bool> done{false};
  std::atomic<int64_t> answered{0};
  std::thread server([&] {
    while (!done.load()) {
      pollfd pfd{.fd = listen_fd, .events = POLLIN, .revents = 0};
      if (poll(&pfd, 1, 50) <= 0) continue;
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      const timeval timeout{.tv_sec = 5, .tv_usec = 0};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      char byte = 0;
      if (read(fd, &byte, 1) == 1 && write(fd, &byte, 1) == 1) answered.fetch_add(1);
      close(fd);
    }
  });
  const pid_t pid = fork();
  if (pid == 0) ClientLoop(procs.c_str(), netns.c_str(), to, seconds, report_w.get());
  const int fork_errno = errno;
  report_w.Reset();
  RateReport r;
  ssize_t n = pid < 0 ? -1 : read(report.get(), &r, sizeof(r));
  if (pid > 0) waitpid(pid, nullptr, 0);
  done = true;
  server.join();
  if (pid < 0) return lib::ErrnoStatus(fork_errno, "connection rate: fork");
  if (n != static_cast<ssize_t>(sizeof(r)))
    return absl::InternalError("connection rate: the client process reported nothing");
  if (r.err != 0) {
    static constexpr const char* kStage[] = {"entering the pod", "socket", "connect", "write",
                                             "reading the answer"};
    return lib::ErrnoStatus(
        r.err, absl::StrCat("connection rate: connection ", r.connections + 1, " to ", ip, ":",
                            port, ": ", kStage[r.stage], " (", answered.load(), " answered)"));
  }
  if (r.connections == 0 || r.elapsed_ns <= 0)
    return absl::InternalError("connection rate: no connection made");
  return r.connections / (r.elapsed_ns / 1e9);
}

}  // namespace shunt::bench
