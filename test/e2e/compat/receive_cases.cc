// Receive-side socket features: splice, MSG_WAITALL, SO_RCVLOWAT with poll
// and epoll, MSG_PEEK, FIONREAD, TCP_ZEROCOPY_RECEIVE.
#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/compat/compat_case.h"
#include "test/e2e/harness/sock_util.h"

namespace shunt::e2e::compat {
namespace {

// The client writes `data` (in one go, from another thread) and half-closes.
std::thread WriteAndClose(int fd, const std::string& data) {
  return std::thread([fd, &data] {
    (void)WriteAll(fd, data);
    shutdown(fd, SHUT_WR);
  });
}

// A server that reads by splice(2) into a pipe from its first byte, as Go's
// io.Copy between two TCP connections does.
absl::StatusOr<Outcome> SpliceFromTheFirstRead(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  const std::string data = RandomBytes(4 << 20, 21);
  std::thread w = WriteAndClose(p->client.get(), data);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return lib::ErrnoStatus(errno, "pipe2");
  lib::UniqueFd rd(pipe_fds[0]), wr(pipe_fds[1]);
  std::string got, end = "timed out";
  std::string buf(1 << 16, '\0');
  for (;;) {
    pollfd pf{p->server.get(), POLLIN, 0};
    if (poll(&pf, 1, 10000) <= 0) break;
    ssize_t n = splice(p->server.get(), nullptr, wr.get(), nullptr, buf.size(), SPLICE_F_NONBLOCK);
    if (n == 0) {
      end = "EOF";
      break;
    }
    if (n < 0 && errno == EAGAIN) continue;
    if (n < 0) {
      end = Result(n);
      break;
    }
    ssize_t r = read(rd.get(), buf.data(), n);
    if (r > 0) got.append(buf.data(), r);
  }
  w.join();
  return Outcome{absl::StrCat("spliced ", Digest(got), ", then ", end), data.size()};
}

// A reader of fixed-size records with MSG_WAITALL from its first read,
// each record written in two parts.
absl::StatusOr<Outcome> WaitAllRecords(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  constexpr int kRecords = 64;
  constexpr size_t kSize = 4096;
  const std::string data = RandomBytes(kRecords * kSize, 22);
  std::thread w([&] {
    for (int i = 0; i < kRecords; ++i) {
      (void)WriteAll(p->client.get(), data.substr(i * kSize, kSize / 2));
      (void)WriteAll(p->client.get(), data.substr(i * kSize + kSize / 2, kSize / 2));
    }
  });
  std::string got, sizes;
  std::string buf(kSize, '\0');
  for (int i = 0; i < kRecords; ++i) {
    ssize_t n = recv(p->server.get(), buf.data(), kSize, MSG_WAITALL);
    if (n != static_cast<ssize_t>(kSize)) sizes += absl::StrCat(" short:", Result(n));
    if (n > 0) got.append(buf.data(), n);
  }
  w.join();
  return Outcome{absl::StrCat(kRecords, " records of ", kSize, ",",
                              sizes.empty() ? " all whole" : sizes, ", ", Digest(got)),
                 data.size()};
}

// SO_RCVLOWAT of 100 set after the first exchange; 50 bytes must not wake
// the reader, 100 must. `use_epoll`: epoll_wait instead of poll.
absl::StatusOr<Outcome> LowWatermark(CaseEnv& env, bool use_epoll) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  const int lowat = 100;
  setsockopt(p->server.get(), SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat));
  lib::UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{.events = EPOLLIN, .data = {.u64 = 1}};
  epoll_ctl(ep.get(), EPOLL_CTL_ADD, p->server.get(), &ev);
  auto readable = [&](int ms) {
    if (use_epoll) {
      epoll_event out{};
      return epoll_wait(ep.get(), &out, 1, ms);
    }
    pollfd pf{p->server.get(), POLLIN, 0};
    return poll(&pf, 1, ms);
  };
  std::string seen;
  for (int round = 0; round < 4; ++round) {
    const std::string half = RandomBytes(50, 23 + round);
    if (auto s = WriteAll(p->client.get(), half); !s.ok()) return s;
    // Waiting is the point: below the watermark nothing may wake the reader.
    const int below = readable(100);
    if (auto s = WriteAll(p->client.get(), half); !s.ok()) return s;
    const int at = readable(5000);
    char buf[200];
    ssize_t n = recv(p->server.get(), buf, sizeof(buf), MSG_DONTWAIT);
    absl::StrAppend(&seen, "[at 50 bytes: ", below, " ready, at 100: ", at, ", recv ", Result(n),
                    "]");
  }
  return Outcome{seen, 4 * 100 + 2 * 256};
}

// MSG_PEEK of a record's header, then the record, as parsers do.
absl::StatusOr<Outcome> PeekThenRead(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  constexpr int kRecords = 256;
  std::string seen, got;
  std::string buf(1400, '\0');
  for (int i = 0; i < kRecords; ++i) {
    // One send of at most one segment: plain TCP delivers it whole too.
    const std::string rec = absl::StrCat("len=", 1000 + i, ";") + RandomBytes(1000 + i, i);
    if (auto s = WriteAll(p->client.get(), rec); !s.ok()) return s;
    pollfd pf{p->server.get(), POLLIN, 0};
    poll(&pf, 1, 5000);
    ssize_t head = recv(p->server.get(), buf.data(), 9, MSG_PEEK);
    ssize_t whole = recv(p->server.get(), buf.data(), buf.size(), MSG_PEEK);
    ssize_t n = recv(p->server.get(), buf.data(), buf.size(), 0);
    if (i < 2)
      absl::StrAppend(&seen, "[peek 9: '", std::string(buf.data(), 9), "' ", Result(head),
                      ", peek all ", Result(whole), ", read ", Result(n), "]");
    if (n > 0) got.append(buf.data(), n);
    if (head != 9 || whole != n) absl::StrAppend(&seen, "[record ", i, " differs]");
  }
  return Outcome{absl::StrCat(seen, " ", Digest(got)), got.size()};
}

// FIONREAD once a record arrived, then a read of exactly that many bytes.
absl::StatusOr<Outcome> FionreadThenRead(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  if (auto s = Exchange(*p, 256); !s.ok()) return s;
  std::string seen, got;
  std::string buf(1400, '\0');
  for (int i = 0; i < 256; ++i) {
    const std::string rec = RandomBytes(1000, 100 + i);
    if (auto s = WriteAll(p->client.get(), rec); !s.ok()) return s;
    pollfd pf{p->server.get(), POLLIN, 0};
    poll(&pf, 1, 5000);
    int inq = -1;
    ioctl(p->server.get(), FIONREAD, &inq);
    ssize_t n = recv(p->server.get(), buf.data(), inq > 0 ? inq : 1, 0);
    if (i == 0 || inq != 1000 || n != inq)
      absl::StrAppend(&seen, "[record ", i, ": FIONREAD ", inq, ", read ", Result(n), "]");
    if (n > 0) got.append(buf.data(), n);
  }
  return Outcome{absl::StrCat(seen, " ", Digest(got)), got.size()};
}

// TCP_ZEROCOPY_RECEIVE into a mapping from the first read, copying what
// cannot be mapped (recv_skip_hint) with recv, as tcp_mmap does.
absl::StatusOr<Outcome> ZerocopyReceive(CaseEnv& env) {
  auto p = Connect(env);
  if (!p.ok()) return p.status();
  const std::string data = RandomBytes(2 << 20, 24);
  std::thread w = WriteAndClose(p->client.get(), data);
  const size_t chunk = 64 * 4096;
  void* map = mmap(nullptr, chunk, PROT_READ, MAP_SHARED, p->server.get(), 0);
  std::string got, notes;
  std::string buf(chunk, '\0');
  bool mapped_any = false;
  for (int spins = 0; spins < 100000; ++spins) {
    pollfd pf{p->server.get(), POLLIN, 0};
    if (poll(&pf, 1, 10000) <= 0) {
      notes = " timed out";
      break;
    }
    tcp_zerocopy_receive zc{};
    socklen_t zl = sizeof(zc);
    zc.address = reinterpret_cast<__u64>(map);
    zc.length = map == MAP_FAILED ? 0 : chunk;
    if (map == MAP_FAILED ||
        getsockopt(p->server.get(), IPPROTO_TCP, TCP_ZEROCOPY_RECEIVE, &zc, &zl) != 0) {
      notes = absl::StrCat(" zerocopy: ", Result(-1));
      break;
    }
    if (zc.length) {
      mapped_any = true;
      got.append(static_cast<const char*>(map), zc.length);
    }
    size_t copy = zc.recv_skip_hint ? zc.recv_skip_hint : (zc.length ? 0 : buf.size());
    if (copy) {
      ssize_t n = recv(p->server.get(), buf.data(), std::min(copy, buf.size()), MSG_DONTWAIT);
      if (n == 0) break;
      if (n > 0) got.append(buf.data(), n);
    }
  }
  if (map != MAP_FAILED) munmap(map, chunk);
  w.join();
  (void)mapped_any;  // on veths (1448-byte segments) pages rarely fill: both runs copy
  return Outcome{absl::StrCat("received ", Digest(got), notes), data.size()};
}

}  // namespace

std::vector<Case> ReceiveCases() {
  return {
      {"SpliceFromTheFirstRead", Path::kTcp, -1, SpliceFromTheFirstRead},
      {"WaitAllRecords", Path::kTcp, SHUNT_TCP_WAITALL, WaitAllRecords},
      {"LowWatermarkWithPoll", Path::kTcp, SHUNT_TCP_RCVLOWAT,
       [](CaseEnv& e) { return LowWatermark(e, false); }},
      {"LowWatermarkWithEpoll", Path::kTcp, SHUNT_TCP_RCVLOWAT,
       [](CaseEnv& e) { return LowWatermark(e, true); }},
      {"PeekThenRead", Path::kShortCircuit, 0, PeekThenRead},
      {"FionreadThenRead", Path::kShortCircuit, 0, FionreadThenRead},
      {"ZerocopyReceive", Path::kTcp, SHUNT_TCP_ZEROCOPY_RECEIVE, ZerocopyReceive},
  };
}

}  // namespace shunt::e2e::compat
