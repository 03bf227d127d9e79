#include "sock_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"

namespace shunt::e2e {
namespace {

using Clock = std::chrono::steady_clock;

int MsLeft(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return ms < 0 ? 0 : static_cast<int>(ms);
}

absl::Status WaitFor(int fd, short events, Clock::time_point deadline, const char* what) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, MsLeft(deadline));
    if (n > 0) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lib::ErrnoStatus(errno, "poll");
    return absl::DeadlineExceededError(absl::StrCat(what, ": timed out"));
  }
}

sockaddr_in Addr(const std::string& ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

}  // namespace

absl::Status ListenOn(int fd, uint16_t port) {
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = Addr("0.0.0.0", port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return lib::ErrnoStatus(errno, "bind");
  if (listen(fd, 128) != 0) return lib::ErrnoStatus(errno, "listen");
  return absl::OkStatus();
}

absl::Status ConnectTo(int fd, const std::string& ip, uint16_t port) {
  sockaddr_in a = Addr(ip, port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("connect ", ip, ":", port));
  return absl::OkStatus();
}

absl::StatusOr<lib::UniqueFd> AcceptOne(int listen_fd, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  if (auto s = WaitFor(listen_fd, POLLIN, deadline, "accept"); !s.ok()) return s;
  int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) return lib::ErrnoStatus(errno, "accept");
  return lib::UniqueFd(fd);
}

absl::Status WriteAll(int fd, const std::string& data, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += n;
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return lib::ErrnoStatus(errno, "send");
    if (auto s = WaitFor(fd, POLLOUT, deadline, "send"); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadToEof(int fd, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string out;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf.data(), n);
      continue;
    }
    if (n == 0) return out;
    if (errno != EAGAIN && errno != EINTR) return lib::ErrnoStatus(errno, "recv");
    if (auto s = WaitFor(fd, POLLIN, deadline, "recv"); !s.ok())
      return absl::DeadlineExceededError(absl::StrCat("recv: no EOF after ", out.size(), " bytes"));
  }
}

absl::StatusOr<std::string> ReadExactly(int fd, size_t want, int timeout_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string out;
  std::string buf(1 << 16, '\0');
  while (out.size() < want) {
    ssize_t n = recv(fd, buf.data(), std::min(buf.size(), want - out.size()), MSG_DONTWAIT);
    if (n > 0) {
      out.append(buf.data(), n);
      continue;
    }
    if (n == 0)
      return absl::DataLossError(absl::StrCat("EOF after ", out.size(), " of ", want, " bytes"));
    if (errno != EAGAIN && errno != EINTR) return lib::ErrnoStatus(errno, "recv");
    if (auto s = WaitFor(fd, POLLIN, deadline, "recv"); !s.ok()) return s;
  }
  return out;
}

absl::Status WarmUp(int client, int server) {
  if (auto s = WriteAll(client, "hello"); !s.ok()) return s;
  auto req = ReadExactly(server, 5);
  if (!req.ok()) return req.status();
  if (auto s = WriteAll(server, "olleh"); !s.ok()) return s;
  auto resp = ReadExactly(client, 5);
  if (!resp.ok()) return resp.status();
  if (*req != "hello" || *resp != "olleh") return absl::DataLossError("warm-up: bytes altered");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<lib::UniqueFd>> SocketsAs(const std::string& cgroup,
                                                     const std::string& netns_path, int domain,
                                                     int type, int protocol, int count) {
  // Up to kBatch descriptors per message (SCM_RIGHTS takes at most 253).
  constexpr int kBatch = 64;
  struct Header {
    int err;
    int fds;
  };
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
    return lib::ErrnoStatus(errno, "socketpair");
  lib::UniqueFd parent_end(sv[0]), child_end(sv[1]);
  const std::string procs = cgroup + "/cgroup.procs";
  // One fork for all of them: forking a big (sanitized) test process is
  // what a socket made this way costs.
  const pid_t pid = fork();
  if (pid < 0) return lib::ErrnoStatus(errno, "fork");
  if (pid == 0) {
    // Only system calls from here: the parent has other threads.
    Header h{0, 0};
    int cg = open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (cg < 0 || write(cg, "0", 1) != 1) {
      h.err = errno;
    } else if (ns < 0 || setns(ns, CLONE_NEWNET) != 0) {
      h.err = errno;
    }
    int made = 0;
    do {
      int fds[kBatch];
      h.fds = 0;
      while (h.err == 0 && h.fds < kBatch && made < count) {
        const int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
        if (fd < 0) {
          h.err = errno;
          break;
        }
        fds[h.fds++] = fd;
        ++made;
      }
      char cmsg_buf[CMSG_SPACE(sizeof(int) * kBatch)] = {};
      iovec iov{&h, sizeof(h)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      if (h.fds > 0) {
        msg.msg_control = cmsg_buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * static_cast<size_t>(h.fds));
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * static_cast<size_t>(h.fds));
        __builtin_memcpy(CMSG_DATA(c), fds, sizeof(int) * static_cast<size_t>(h.fds));
      }
      if (sendmsg(child_end.get(), &msg, 0) < 0) _exit(1);
      for (int k = 0; k < h.fds; ++k) close(fds[k]);
    } while (h.err == 0 && made < count);
    _exit(0);
  }
  child_end.Reset();
  std::vector<lib::UniqueFd> out;
  int err = 0;
  absl::Status failure;
  while (static_cast<int>(out.size()) < count && err == 0) {
    Header h{0, 0};
    char cmsg_buf[CMSG_SPACE(sizeof(int) * kBatch)] = {};
    iovec iov{&h, sizeof(h)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg_buf;
    msg.msg_controllen = sizeof(cmsg_buf);
    const ssize_t n = recvmsg(parent_end.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n != static_cast<ssize_t>(sizeof(h))) {
      failure = lib::ErrnoStatus(n < 0 ? errno : EPROTO, "sockets from child");
      break;
    }
    if (h.fds > 0) {
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      if (c == nullptr || c->cmsg_type != SCM_RIGHTS) {
        failure = absl::InternalError("no fds from child");
        break;
      }
      std::vector<int> fds(static_cast<size_t>(h.fds));
      std::memcpy(fds.data(), CMSG_DATA(c), sizeof(int) * fds.size());
      for (int fd : fds) out.emplace_back(fd);
    }
    err = h.err;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!failure.ok()) return failure;
  if (err != 0)
    return lib::ErrnoStatus(err, absl::StrCat("socket in ", cgroup, " and ", netns_path));
  return out;
}

absl::StatusOr<lib::UniqueFd> SocketAs(const std::string& cgroup, const std::string& netns_path,
                                       int domain, int type, int protocol) {
  SHUNT_ASSIGN_OR_RETURN(std::vector<lib::UniqueFd> one,
                         SocketsAs(cgroup, netns_path, domain, type, protocol, 1));
  return std::move(one[0]);
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    memcpy(&s[i], &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

uint64_t Fnv1a(const std::string& data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

absl::StatusOr<std::vector<std::chrono::nanoseconds>> TimedExchanges(
    int client, int server, int rounds, size_t req, size_t resp, std::chrono::microseconds delay) {
  using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC, as bpf_ktime_get_ns
  std::vector<Clock::time_point> sent(rounds), answered(rounds);
  absl::Status server_status;
  std::thread srv([&] {
    for (int i = 0; i < rounds && server_status.ok(); ++i) {
      auto got = ReadExactly(server, req);
      if (!got.ok()) {
        server_status = got.status();
        return;
      }
      if (delay.count()) std::this_thread::sleep_for(delay);
      answered[i] = Clock::now();
      server_status = WriteAll(server, std::string(resp, 'r'));
    }
  });
  absl::Status st;
  for (int i = 0; i < rounds && st.ok(); ++i) {
    sent[i] = Clock::now();
    st = WriteAll(client, std::string(req, 'q'));
    if (st.ok()) st = ReadExactly(client, resp).status();
  }
  srv.join();
  if (!st.ok()) return st;
  if (!server_status.ok()) return server_status;
  std::vector<std::chrono::nanoseconds> out;
  for (int i = 0; i < rounds; ++i) out.push_back(answered[i] - sent[i]);
  return out;
}

double MedianUs(std::vector<std::chrono::nanoseconds> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  const auto mid = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  return std::chrono::duration<double, std::micro>(mid).count();
}

bool ConnectsWithin(int fd, const std::string& ip, uint16_t port, int ms) {
  fcntl(fd, F_SETFL, O_NONBLOCK);
  sockaddr_storage ss{};
  socklen_t alen = sizeof(sockaddr_in);
  if (ip.find(':') != std::string::npos) {  // an IPv6 address, on an AF_INET6 socket
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr);
    alen = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&ss), alen) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{fd, POLLOUT, 0};
  if (poll(&p, 1, ms) != 1) return false;
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

}  // namespace shunt::e2e
