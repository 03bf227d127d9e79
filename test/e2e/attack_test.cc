// The attack suite: a hostile pod (root in its own network namespace, the
// capabilities a container runtime grants by default) tries each known way
// around enforce mode, and what it reached is checked from outside — the
// server's accept count, the bytes that arrived, the errno the attacker saw.
// docs/security.md names the test behind each claim.
//
// The bookstore: bookbuyer may reach bookstore on TCP 8080 and UDP 5353;
// bookthief may not. Service "store" (10.96.0.20) fronts it on TCP 80 and
// UDP 53.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

using AttackTest = AttackFixture;

// Item 1: TCP on an AF_INET6 socket to ::ffff:<pod IP> runs only the IPv6
// connect hook. It must meet the IPv4 verdict: denied for the thief,
// allowed (and short-circuited) for the buyer, denied on an ungranted port.
TEST_F(AttackTest, AnIpv4MappedTcpConnectMeetsTheIpv4Verdict) {
  Start("enforce");
  lib::UniqueFd l8080 = Listen(*store_, 8080);
  lib::UniqueFd l9090 = Listen(*store_, 9090);
  EXPECT_EQ(ConnectMapped(*thief_, SOCK_STREAM, store_->ip, 8080), EPERM);
  EXPECT_EQ(ConnectMapped(*buyer_, SOCK_STREAM, store_->ip, 9090), EPERM);

  // The buyer's own connection works, and rides the short-circuit.
  lib::UniqueFd client;
  ASSERT_EQ(ConnectMapped(*buyer_, SOCK_STREAM, store_->ip, 8080, &client), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, AcceptOne(l8080.get()));
  ASSERT_OK(WarmUp(client.get(), server.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*store_));
  const std::string payload = RandomBytes(256 * 1024, 7);
  ASSERT_OK(WriteAll(client.get(), payload));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(server.get(), payload.size()));
  EXPECT_EQ(Fnv1a(got), Fnv1a(payload));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(*store_));
  EXPECT_LT(veth_after - veth_before, 64u * 1024) << "the 256 KiB crossed the veth";

  // Nothing else reached the store: one accepted connection in all.
  EXPECT_EQ(DrainAccepts(l8080.get()), 0);
  EXPECT_EQ(DrainAccepts(l9090.get()), 0);
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("connect6"), std::string::npos) << drops;
}

// Item 1, UDP: connected and unconnected AF_INET6 datagram sockets to
// ::ffff:<pod IP> meet the IPv4 verdict too.
TEST_F(AttackTest, AnIpv4MappedUdpDatagramMeetsTheIpv4Verdict) {
  Start("enforce");
  lib::UniqueFd sink = Listen(*store_, 5353, SOCK_DGRAM);
  EXPECT_EQ(ConnectMapped(*thief_, SOCK_DGRAM, store_->ip, 5353), EPERM);
  EXPECT_EQ(SendToMapped(*thief_, store_->ip, 5353, "thief"), EPERM);
  ASSERT_EQ(SendToMapped(*buyer_, store_->ip, 5353, "buyer"), 0);
  lib::UniqueFd connected;
  ASSERT_EQ(ConnectMapped(*buyer_, SOCK_DGRAM, store_->ip, 5353, &connected), 0);
  ASSERT_EQ(send(connected.get(), "buyer2", 6, 0), 6);

  // Exactly the buyer's two datagrams arrived.
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    pollfd p{sink.get(), POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 5000), 1);
    char buf[64];
    ssize_t n = recv(sink.get(), buf, sizeof(buf), 0);
    ASSERT_GT(n, 0);
    got.emplace_back(buf, n);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"buyer", "buyer2"}));
  char buf[64];
  EXPECT_EQ(recv(sink.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
}

// A dual-stack client reaches a Service through its IPv4-mapped ClusterIP,
// and getpeername() and recvfrom() show the address it asked for, as for an
// AF_INET client. (Without the IPv6 hooks nothing answers a ClusterIP.)
TEST_F(AttackTest, AnIpv4MappedClientIsBalancedToAServiceAndSeesItsAddress) {
  Start("permissive");
  lib::UniqueFd l8080 = Listen(*store_, 8080);
  lib::UniqueFd client;
  ASSERT_EQ(ConnectMapped(*buyer_, SOCK_STREAM, kVip, 80, &client), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, AcceptOne(l8080.get()));
  sockaddr_in6 peer{};
  socklen_t len = sizeof(peer);
  ASSERT_EQ(getpeername(client.get(), reinterpret_cast<sockaddr*>(&peer), &len), 0);
  EXPECT_EQ(Ip6String(peer.sin6_addr), absl::StrCat("::ffff:", kVip));
  EXPECT_EQ(ntohs(peer.sin6_port), 80);

  lib::UniqueFd dns = Listen(*store_, 5353, SOCK_DGRAM);
  lib::UniqueFd asker;
  ASSERT_EQ(SendToMapped(*buyer_, kVip, 53, "query", &asker), 0);
  pollfd p{dns.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  char buf[64];
  sockaddr_in from{};
  socklen_t from_len = sizeof(from);
  ASSERT_EQ(recvfrom(dns.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &from_len),
            5);
  ASSERT_EQ(sendto(dns.get(), "answer", 6, 0, reinterpret_cast<sockaddr*>(&from), from_len), 6);
  pollfd q{asker.get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1);
  sockaddr_in6 replier{};
  socklen_t replier_len = sizeof(replier);
  ASSERT_EQ(recvfrom(asker.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&replier),
                     &replier_len),
            6);
  EXPECT_EQ(Ip6String(replier.sin6_addr), absl::StrCat("::ffff:", kVip));
  EXPECT_EQ(ntohs(replier.sin6_port), 53);
}

}  // namespace
}  // namespace shunt::e2e
