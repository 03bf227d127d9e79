// shunt-loop-bench: what one message costs a proxy thread's event loop.
// Two threads ping-pong a 64-byte message over TCP on 127.0.0.1, each
// thread reading with its loop's readiness and answering with send():
// once with standalone Asio (async_wait, as the workers do today) and once
// with proxy/loop's EventLoop (each socket registered once). Prints CPU
// and wall time per round trip and the ratio EventLoop / Asio, from runs
// interleaved in one process (this machine's noise hits both alike).
//
// Usage: shunt-loop-bench [--rounds 3] [--trips 50000]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/loop/event_loop.h"

namespace {

struct Sockets {
  int a = -1, b = -1;
};

// A connected TCP pair on 127.0.0.1, non-blocking, TCP_NODELAY.
Sockets TcpPair() {
  int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (l < 0 || bind(l, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(l, 1) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    perror("listen");
    exit(1);
  }
  Sockets s;
  s.a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(s.a, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    perror("connect");
    exit(1);
  }
  s.b = accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  close(l);
  int one = 1;
  for (int fd : {s.a, s.b}) {
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(fd, F_SETFL, O_NONBLOCK);
  }
  return s;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

struct Result {
  double cpu_us = 0, wall_us = 0;
};

// One end: on each readable wake-up, read what is there; every whole
// message read is answered (the pinger counts trips and stops).
struct End {
  int fd;
  bool pinger;
  int trips_left;
  size_t pending = 0;
  char buf[4096];
  char msg[64] = {};
  // False when done.
  bool OnReadable() {
    for (;;) {
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      pending += static_cast<size_t>(n);
    }
    while (pending >= sizeof(msg)) {
      pending -= sizeof(msg);
      if (pinger && --trips_left == 0) return false;
      if (send(fd, msg, sizeof(msg), MSG_NOSIGNAL) != sizeof(msg)) return false;
    }
    return true;
  }
};

Result RunAsio(int trips) {
  Sockets s = TcpPair();
  End ping{s.a, true, trips}, pong{s.b, false, 0};
  asio::io_context io_a{1}, io_b{1};
  asio::ip::tcp::socket sa(io_a, asio::ip::tcp::v4(), s.a), sb(io_b, asio::ip::tcp::v4(), s.b);
  std::function<void(asio::ip::tcp::socket&, End&, asio::io_context&)> arm =
      [&](asio::ip::tcp::socket& sock, End& e, asio::io_context& io) {
        sock.async_wait(asio::ip::tcp::socket::wait_read, [&](const asio::error_code& ec) {
          if (ec) return;
          if (!e.OnReadable()) {
            io_a.stop();
            io_b.stop();
            return;
          }
          arm(sock, e, io);
        });
      };
  arm(sa, ping, io_a);
  arm(sb, pong, io_b);
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread tb([&] { io_b.run(); });
  send(s.a, ping.msg, sizeof(ping.msg), MSG_NOSIGNAL);
  io_a.run();
  io_b.stop();
  tb.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {(CpuSeconds() - cpu0) * 1e6 / trips, wall * 1e6 / trips};
}

class EndWatcher : public shunt::proxy::EventLoop::Watcher {
 public:
  EndWatcher(End* e, shunt::proxy::EventLoop* mine, shunt::proxy::EventLoop* other)
      : e_(e), mine_(mine), other_(other) {}
  void OnEvents(uint32_t events) override {
    if (!(events & EPOLLIN)) return;
    if (!e_->OnReadable()) {
      mine_->Stop();
      other_->Stop();
    }
  }

 private:
  End* e_;
  shunt::proxy::EventLoop* mine_;
  shunt::proxy::EventLoop* other_;
};

Result RunEventLoop(int trips) {
  Sockets s = TcpPair();
  End ping{s.a, true, trips}, pong{s.b, false, 0};
  auto la = shunt::proxy::EventLoop::Create();
  auto lb = shunt::proxy::EventLoop::Create();
  if (!la.ok() || !lb.ok()) {
    fprintf(stderr, "event loop: %s\n", std::string(la.status().message()).c_str());
    exit(1);
  }
  EndWatcher wa(&ping, la->get(), lb->get()), wb(&pong, lb->get(), la->get());
  if (!(*la)->Watch(s.a, &wa).ok() || !(*lb)->Watch(s.b, &wb).ok()) exit(1);
  const double cpu0 = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread tb([&] { (*lb)->Run(); });
  send(s.a, ping.msg, sizeof(ping.msg), MSG_NOSIGNAL);
  (*la)->Run();
  tb.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (*la)->Unwatch(s.a);
  (*lb)->Unwatch(s.b);
  close(s.a);
  close(s.b);
  return {(CpuSeconds() - cpu0) * 1e6 / trips, wall * 1e6 / trips};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 3, trips = 50000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = atoi(argv[i + 1]);
    if (flag == "--rounds" && value > 0) {
      rounds = value;
    } else if (flag == "--trips" && value > 0) {
      trips = value;
    } else {
      fprintf(stderr, "shunt-loop-bench: bad flag %s %s\nusage: %s [--rounds 3] [--trips 50000]\n",
              argv[i], argv[i + 1], argv[0]);
      return 2;
    }
  }
  if (argc % 2 == 0) {
    fprintf(stderr, "usage: %s [--rounds 3] [--trips 50000]\n", argv[0]);
    return 2;
  }
  std::vector<double> asio_cpu, loop_cpu, asio_wall, loop_wall;
  for (int r = 1; r <= rounds; ++r) {
    // Alternating which goes first, so neither always gets the warm caches.
    Result a, l;
    if (r % 2) {
      a = RunAsio(trips);
      l = RunEventLoop(trips);
    } else {
      l = RunEventLoop(trips);
      a = RunAsio(trips);
    }
    printf("round %d\n  asio       cpu/trip %6.2f us  wall/trip %6.2f us\n", r, a.cpu_us,
           a.wall_us);
    printf("  EventLoop  cpu/trip %6.2f us  wall/trip %6.2f us\n", l.cpu_us, l.wall_us);
    asio_cpu.push_back(a.cpu_us);
    loop_cpu.push_back(l.cpu_us);
    asio_wall.push_back(a.wall_us);
    loop_wall.push_back(l.wall_us);
  }
  printf("medians of %d rounds, %d round trips each, ratio EventLoop / asio\n", rounds, trips);
  printf("  cpu per round trip   %6.2f vs %6.2f us  %.2fx\n", Median(loop_cpu), Median(asio_cpu),
         Median(loop_cpu) / Median(asio_cpu));
  printf("  wall per round trip  %6.2f vs %6.2f us  %.2fx\n", Median(loop_wall), Median(asio_wall),
         Median(loop_wall) / Median(asio_wall));
  return 0;
}
