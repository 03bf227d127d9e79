// The proxy's listeners steered by CPU (proxy/server/worker.h ListenSocket,
// Worker::Listen): in one SO_REUSEPORT group, the kernel (6.1 and later)
// gives a connection to the listener whose SO_INCOMING_CPU is the CPU its
// handshake ran on. Checked from outside: clients pinned to each CPU
// connect over loopback, and each listener accepts exactly the connections
// made from its CPU (by their source ports).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/utsname.h>

#include <cstdio>
#include <set>
#include <thread>
#include <vector>

#include "proxy/server/worker.h"

namespace shunt::proxy {
namespace {

uint16_t PortOf(int fd, bool peer) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if ((peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len)
            : getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
    return 0;
  return ntohs(a.sin_port);
}

// `n` connections to 127.0.0.1:port from a thread pinned to `cpu`; their
// source ports (the sockets stay open in *keep).
std::set<uint16_t> ConnectFrom(int cpu, uint16_t port, int n, std::vector<lib::UniqueFd>* keep) {
  std::set<uint16_t> ports;
  std::thread t([&] {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0) return;
    for (int i = 0; i < n; ++i) {
      lib::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_port = htons(port);
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) return;
      ports.insert(PortOf(fd.get(), /*peer=*/false));
      keep->push_back(std::move(fd));
    }
  });
  t.join();
  return ports;
}

// The source ports of the connections waiting on listener `fd` (non-blocking,
// as ListenSocket makes it: the handshakes are all done).
std::set<uint16_t> AcceptAll(int fd) {
  std::set<uint16_t> ports;
  for (;;) {
    lib::UniqueFd c(accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!c.valid()) break;
    ports.insert(PortOf(c.get(), /*peer=*/true));
  }
  return ports;
}

// Linux 6.1 made SO_REUSEPORT's choice honour SO_INCOMING_CPU.
bool KernelSteersByCpu() {
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
  return major > 6 || (major == 6 && minor >= 1);
}

TEST(WorkerListenTest, AConnectionGoesToTheListenerOfTheCpuItsHandshakeRanOn) {
  const std::vector<int> cpus = AllowedCpus();
  if (cpus.size() < 2) GTEST_SKIP() << "one CPU: nothing to steer between";
  if (!KernelSteersByCpu()) GTEST_SKIP() << "a kernel before 6.1 does not steer by CPU";
  auto first = ListenSocket("127.0.0.1", 0, cpus[0]);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint16_t port = PortOf(first->get(), /*peer=*/false);
  auto second = ListenSocket("127.0.0.1", port, cpus[1]);
  ASSERT_TRUE(second.ok()) << second.status();
  std::vector<lib::UniqueFd> keep;
  const std::set<uint16_t> from0 = ConnectFrom(cpus[0], port, 16, &keep);
  const std::set<uint16_t> from1 = ConnectFrom(cpus[1], port, 16, &keep);
  ASSERT_EQ(from0.size(), 16u);
  ASSERT_EQ(from1.size(), 16u);
  EXPECT_EQ(AcceptAll(first->get()), from0);
  EXPECT_EQ(AcceptAll(second->get()), from1);
}

TEST(WorkerListenTest, WithoutACpuTheListenersShareByHash) {
  auto first = ListenSocket("127.0.0.1", 0, -1);
  ASSERT_TRUE(first.ok()) << first.status();
  const uint16_t port = PortOf(first->get(), /*peer=*/false);
  auto second = ListenSocket("127.0.0.1", port, -1);
  ASSERT_TRUE(second.ok()) << second.status();
  std::vector<lib::UniqueFd> keep;
  const std::set<uint16_t> all = ConnectFrom(AllowedCpus()[0], port, 64, &keep);
  ASSERT_EQ(all.size(), 64u);
  const std::set<uint16_t> a = AcceptAll(first->get()), b = AcceptAll(second->get());
  EXPECT_EQ(a.size() + b.size(), 64u);
  // 64 connections by hash: both get some (all on one: 2 in 2^64).
  EXPECT_FALSE(a.empty());
  EXPECT_FALSE(b.empty());
}

TEST(WorkerListenTest, AnAddressThatIsNotOneIsNamed) {
  auto l = ListenSocket("10.0.0.300", 80, -1);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(std::string(l.status().message()).find("10.0.0.300"), std::string::npos) << l.status();
}

}  // namespace
}  // namespace shunt::proxy
