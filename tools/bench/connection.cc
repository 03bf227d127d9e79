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
#include <chrono>
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

// A forked child joins the pod: its cgroup, then its network namespace.
// System calls only (the parent has threads); 0 or the errno.
int EnterPod(const char* procs, const char* netns) {
  const int cg = open(procs, O_WRONLY | O_CLOEXEC);
  const int ns = open(netns, O_RDONLY | O_CLOEXEC);
  const int err = cg < 0 || write(cg, "0", 1) != 1 || ns < 0 || setns(ns, CLONE_NEWNET) != 0
                      ? (errno ? errno : EIO)
                      : 0;
  if (cg >= 0) close(cg);
  if (ns >= 0) close(ns);
  return err;
}

// The client process: only system calls (the parent has threads).
[[noreturn]] void ClientLoop(const char* procs, const char* netns, sockaddr_in to, double seconds,
                             int report_fd) {
  RateReport r;
  if ((r.err = EnterPod(procs, netns)) != 0) {
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

absl::StatusOr<std::unique_ptr<IdleConnections>> IdleConnections::Open(const e2e::TestPod& client,
                                                                       const std::string& ip,
                                                                       uint16_t port, int listen_fd,
                                                                       int n) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &to.sin_addr) != 1)
    return absl::InvalidArgumentError(absl::StrCat("idle connections: bad address ", ip));
  int report[2], hold[2];
  if (pipe2(report, O_CLOEXEC) != 0) return lib::ErrnoStatus(errno, "idle connections: pipe");
  lib::UniqueFd report_r(report[0]), report_w(report[1]);
  if (pipe2(hold, O_CLOEXEC) != 0) return lib::ErrnoStatus(errno, "idle connections: pipe");
  lib::UniqueFd hold_r(hold[0]), hold_w(hold[1]);
  const std::string procs = client.cgroup + "/cgroup.procs", netns = "/run/netns/" + client.netns;
  std::unique_ptr<IdleConnections> idle(new IdleConnections());
  idle->accepted_.reserve(n);
  // The far ends, accepted while the child connects.
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    while (!stop.load() && static_cast<int>(idle->accepted_.size()) < n) {
      pollfd pfd{.fd = listen_fd, .events = POLLIN, .revents = 0};
      if (poll(&pfd, 1, 50) <= 0) continue;
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) idle->accepted_.emplace_back(fd);
    }
  });
  const pid_t pid = fork();
  if (pid == 0) {
    // Only system calls from here (the parent has threads).
    RateReport r;
    if ((r.err = EnterPod(procs.c_str(), netns.c_str())) == 0) {
      for (; r.connections < n; ++r.connections) {
        const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
          r.err = errno, r.stage = 1;
          break;
        }
        if (connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof(to)) != 0) {
          r.err = errno, r.stage = 2;
          break;
        }
      }
    }
    (void)!write(report_w.get(), &r, sizeof(r));
    close(hold[1]);  // its copy of the parent's end: else the read below never ends
    char byte;
    (void)!read(hold_r.get(), &byte, 1);  // until the parent lets go
    _exit(0);
  }
  const int fork_errno = errno;
  report_w.Reset();
  hold_r.Reset();
  idle->child_ = pid;
  idle->hold_ = std::move(hold_w);
  RateReport r;
  const ssize_t got = pid < 0 ? -1 : read(report_r.get(), &r, sizeof(r));
  // Everything the child connected arrives at the listener (30 s at most:
  // a full accept queue costs a SYN retransmission).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (got == static_cast<ssize_t>(sizeof(r)) &&
         static_cast<int64_t>(idle->accepted_.size()) < r.connections &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  acceptor.join();
  if (pid < 0) return lib::ErrnoStatus(fork_errno, "idle connections: fork");
  if (got != static_cast<ssize_t>(sizeof(r)))
    return absl::InternalError("idle connections: the client process reported nothing");
  if (r.err != 0)
    return lib::ErrnoStatus(r.err, absl::StrCat("idle connections: connection ", r.connections + 1,
                                                r.stage == 1 ? ": socket" : ": connect"));
  if (static_cast<int>(idle->accepted_.size()) < n)
    return absl::DeadlineExceededError(absl::StrCat("idle connections: ", idle->accepted_.size(),
                                                    " of ", n, " reached the server"));
  return idle;
}

IdleConnections::~IdleConnections() {
  hold_.Reset();  // the child closes its ends and exits
  if (child_ > 0) waitpid(child_, nullptr, 0);
}

}  // namespace shunt::bench
