#include "proxy/http/upstream_pool.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shunt::proxy::http {
namespace {

Destination Addr(const char* ip, uint16_t port) {
  Destination d;
  inet_pton(AF_INET, ip, d.addr.data());
  d.port = port;
  return d;
}

const Destination kPodA = Addr("10.1.0.5", 0), kPodB = Addr("10.1.0.6", 0);
const Destination kServer = Addr("10.1.0.9", 8080), kOther = Addr("10.1.0.9", 8081);

// A connected pair: the proxy's end (to park) and the "server's".
std::pair<lib::UniqueFd, lib::UniqueFd> Pair() {
  int sv[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  return {lib::UniqueFd(sv[0]), lib::UniqueFd(sv[1])};
}

// True once the server's end reads the proxy's end closed (a reset when
// the closed end had unread bytes).
bool ClosedAtPeer(int server_end) {
  char c;
  const ssize_t n = recv(server_end, &c, 1, MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

struct Counted {
  int parked = 0, reused = 0;
  UpstreamPool::Options Options(UpstreamPool::Options o = {}) {
    o.on_park = [this] { ++parked; };
    o.on_reuse = [this] { ++reused; };
    return o;
  }
};

// Another client connection of the same pod to the same server gets the
// parked connection, from any thread; another pod, or another server,
// never does.
TEST(UpstreamPoolTest, AParkedConnectionGoesOnlyToItsSourceAndDestination) {
  Counted n;
  UpstreamPool pool(n.Options());
  auto [mine, server] = Pair();
  const int fd = mine.get();
  ASSERT_TRUE(pool.Park(kPodA, kServer, std::move(mine), false));
  EXPECT_EQ(n.parked, 1);
  EXPECT_FALSE(pool.Take(kPodB, kServer).fd.valid());
  EXPECT_FALSE(pool.Take(kPodA, kOther).fd.valid());
  UpstreamPool::Taken t;
  std::thread([&] { t = pool.Take(kPodA, kServer); }).join();
  EXPECT_EQ(t.fd.get(), fd);
  EXPECT_EQ(n.reused, 1);
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_FALSE(pool.Take(kPodA, kServer).fd.valid()) << "taken once";
}

// A server that closed a kept connection (its keep-alive timeout), or
// wrote to it unasked, is not handed out: the connection is closed and
// the next one kept is given instead.
TEST(UpstreamPoolTest, AConnectionItsServerClosedOrWroteToIsClosedNotTaken) {
  Counted n;
  UpstreamPool pool(n.Options());
  auto [good, server_good] = Pair();
  auto [closed, server_closed] = Pair();
  auto [chatty, server_chatty] = Pair();
  const int good_fd = good.get();
  ASSERT_TRUE(pool.Park(kPodA, kServer, std::move(good), false));
  ASSERT_TRUE(pool.Park(kPodA, kServer, std::move(closed), false));
  ASSERT_TRUE(pool.Park(kPodA, kServer, std::move(chatty), false));
  server_closed.Reset();
  ASSERT_EQ(send(server_chatty.get(), "x", 1, 0), 1);
  UpstreamPool::Taken t = pool.Take(kPodA, kServer);  // the last parked first
  EXPECT_EQ(t.fd.get(), good_fd);
  EXPECT_TRUE(ClosedAtPeer(server_chatty.get()));
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(n.reused, 1);
}

TEST(UpstreamPoolTest, AConnectionParkedPastMaxIdleIsClosed) {
  Counted n;
  UpstreamPool pool(n.Options({.max_idle = std::chrono::milliseconds(500)}));
  auto [mine, server] = Pair();
  ASSERT_TRUE(pool.Park(kPodA, kServer, std::move(mine), false));
  pool.Expire(UpstreamPool::Clock::now() + std::chrono::milliseconds(100));
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_FALSE(ClosedAtPeer(server.get()));
  pool.Expire(UpstreamPool::Clock::now() + std::chrono::milliseconds(600));
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_TRUE(ClosedAtPeer(server.get()));
}

TEST(UpstreamPoolTest, APoolKeepsABoundedNumberAndClosesTheRest) {
  Counted n;
  UpstreamPool pool(n.Options({.max_per_route = 2, .max_total = 3}));
  std::vector<lib::UniqueFd> servers;
  std::vector<bool> kept;
  for (const Destination& to : {kServer, kServer, kServer, kOther, kOther}) {
    auto [mine, server] = Pair();
    servers.push_back(std::move(server));
    kept.push_back(pool.Park(kPodA, to, std::move(mine), false));
  }
  // Two to kServer (the third over its route's bound), one to kOther (the
  // pool's bound of three reached).
  EXPECT_EQ(kept, (std::vector<bool>{true, true, false, true, false}));
  EXPECT_EQ(pool.size(), 3u);
  EXPECT_TRUE(ClosedAtPeer(servers[2].get()));
  EXPECT_TRUE(ClosedAtPeer(servers[4].get()));
  EXPECT_FALSE(ClosedAtPeer(servers[0].get()));
  EXPECT_EQ(n.parked, 3);
}

}  // namespace
}  // namespace shunt::proxy::http
