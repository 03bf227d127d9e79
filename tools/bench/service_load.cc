#include "tools/bench/service_load.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "tools/bench/blocking_io.h"
#include "tools/bench/interrupt.h"

namespace shunt::bench {
namespace {

using Clock = std::chrono::steady_clock;

// --request mode runs the client on CPU 0 and the server on CPU 1: left to
// the scheduler, they shared a CPU in some rounds and not in others (rounds
// varied by 20%). The client is pinned only while it measures, so the agent
// it starts does not inherit the pin. cpu < 0: every CPU again.
void PinToCpu(int cpu) {
  const int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < n; ++c)
    if (cpu < 0 || c == cpu % n) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

// --request mode, like a load generator with --window connections in
// flight: each window's connections connect and send their request, then
// each reads its whole response and closes (abortively, as below). The
// server answers from another thread (ServeRequests).
absl::Status Exchange(std::vector<lib::UniqueFd>& socks, const std::vector<sockaddr_in>& to,
                      const ServiceBenchOptions& o, int done) {
  const std::string request(static_cast<size_t>(o.request_bytes), 'q');
  std::string response(static_cast<size_t>(o.request_bytes), '\0');
  for (size_t w = 0; w < socks.size(); w += static_cast<size_t>(o.window)) {
    const size_t end = std::min(socks.size(), w + static_cast<size_t>(o.window));
    for (size_t i = w; i < end; ++i) {
      // Timeouts: a response that never comes fails the run instead of hanging it.
      SHUNT_RETURN_IF_ERROR(TuneSocket(socks[i].get(), 5000));
      if (connect(socks[i].get(), reinterpret_cast<const sockaddr*>(&to[i]), sizeof(to[i])) != 0)
        return absl::InternalError(absl::StrCat("connect #", done + i, ": ", strerror(errno)));
      if (absl::Status st = WriteFull(socks[i].get(), request.data(), request.size()); !st.ok())
        return absl::Status(st.code(), absl::StrCat("request #", done + i, ": ", st.message()));
    }
    for (size_t i = w; i < end; ++i) {
      if (absl::Status st = ReadFull(socks[i].get(), response.data(), response.size()); !st.ok())
        return absl::Status(st.code(), absl::StrCat("response #", done + i, ": ", st.message()));
      socks[i].Reset();
    }
  }
  return absl::OkStatus();
}

}  // namespace

// connect() + abortive close (no TIME_WAIT to exhaust ports) of `n`
// connections to random service addresses; sockets are made in the pod
// ahead of time in batches, so only connect and close are timed.
absl::StatusOr<double> ConnectionsPerSecond(e2e::TestNode& node, const e2e::TestPod& client,
                                            const ServiceBenchOptions& o,
                                            const std::string& direct_ip) {
  std::mt19937 rng(42);
  double seconds = 0;
  int done = 0;
  const int batch = 1000;
  while (done < o.connections) {
    std::vector<lib::UniqueFd> socks;
    std::vector<sockaddr_in> to;
    for (int i = 0; i < batch && done + i < o.connections; ++i) {
      SHUNT_ASSIGN_OR_RETURN(auto s, node.PodSocket(client, SOCK_STREAM));
      linger lg{1, 0};
      setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      socks.push_back(std::move(s));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(direct_ip.empty() ? 80 : 8080);
      const std::string ip =
          direct_ip.empty() ? ServiceVip(static_cast<int>(rng() % o.services)) : direct_ip;
      inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
      to.push_back(a);
    }
    const auto t0 = Clock::now();
    if (o.request_bytes == 0) {
      for (size_t i = 0; i < socks.size(); ++i) {
        if (connect(socks[i].get(), reinterpret_cast<sockaddr*>(&to[i]), sizeof(to[i])) != 0)
          return absl::InternalError(absl::StrCat("connect #", done + i, ": ", strerror(errno)));
        socks[i].Reset();
      }
    } else {
      PinToCpu(0);
      absl::Status st = Exchange(socks, to, o, done);
      PinToCpu(-1);
      SHUNT_RETURN_IF_ERROR(st);
    }
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    done += static_cast<int>(socks.size());
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());
  }
  return o.connections / seconds;
}

// The servers of --request mode, on one thread like an event-driven
// server: accept, read the request, answer with as many bytes, close (an
// orderly FIN; the client's abortive close then ends the connection
// without a TIME_WAIT on either side).
void ServeRequests(const std::vector<lib::UniqueFd>& listeners, int bytes,
                   const std::atomic<bool>& stop) {
  PinToCpu(1);
  lib::UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  for (const auto& l : listeners) {
    fcntl(l.get(), F_SETFL, fcntl(l.get(), F_GETFL) | O_NONBLOCK);  // accept until EAGAIN
    epoll_event ev{.events = EPOLLIN, .data = {.fd = l.get()}};
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, l.get(), &ev);
  }
  auto is_listener = [&](int fd) {
    for (const auto& l : listeners)
      if (l.get() == fd) return true;
    return false;
  };
  const std::string response(static_cast<size_t>(bytes), 'r');
  std::vector<char> buf(static_cast<size_t>(bytes));
  std::vector<size_t> got(65536);  // request bytes read so far, by fd
  epoll_event evs[64];
  while (!stop) {
    const int n = epoll_wait(ep.get(), evs, 64, 20);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (is_listener(fd)) {
        for (int c; (c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          if (static_cast<size_t>(c) >= got.size()) got.resize(static_cast<size_t>(c) * 2);
          got[static_cast<size_t>(c)] = 0;
          epoll_event ev{.events = EPOLLIN, .data = {.fd = c}};
          epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      size_t& have = got[static_cast<size_t>(fd)];
      const ssize_t r = read(fd, buf.data(), buf.size() - have);
      if (r > 0) have += static_cast<size_t>(r);
      if (r > 0 && have < buf.size()) continue;
      // A whole request: answer it. Nothing (EOF, reset) or a short write:
      // the client sees it as a failed exchange.
      if (r > 0) (void)!write(fd, response.data(), response.size());
      if (r >= 0 || errno != EAGAIN) close(fd);
    }
  }
}

}  // namespace shunt::bench
