// The attack suite, protocols SMI cannot express: between meshed pods in
// enforce mode, ICMP echo is denied unless --allow-icmp-echo, SCTP and any
// other IP protocol are denied, and ICMP errors pass only when they belong
// to a flow policy allows (port unreachable reaches the client, a forged
// one does not). Checked at the receiver by its own counters
// (/proc/net/snmp) and by what its sockets report.
#include <netinet/ip_icmp.h>

#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

using ProtocolAttackTest = AttackFixture;

// An ICMP echo request from `from` to `to` on a raw socket; true when the
// reply came back within a second.
bool Ping(TestNode& node, const TestPod& from, const TestPod& to) {
  auto s = node.PodSocket(from, SOCK_RAW, AF_INET, IPPROTO_ICMP);
  if (!s.ok()) return false;
  icmphdr echo{};
  echo.type = ICMP_ECHO;
  echo.un.echo.id = htons(0x5a5a);
  echo.un.echo.sequence = htons(1);
  echo.checksum = AttackFixture::Checksum(&echo, sizeof(echo), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, to.ip.c_str(), &a.sin_addr);
  if (sendto(s->get(), &echo, sizeof(echo), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
    return false;
  for (int i = 0; i < 10; ++i) {
    pollfd p{s->get(), POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    char buf[256];
    ssize_t n = recv(s->get(), buf, sizeof(buf), 0);
    if (n < static_cast<ssize_t>(sizeof(iphdr) + sizeof(icmphdr))) continue;
    const auto* reply = reinterpret_cast<const icmphdr*>(buf + sizeof(iphdr));
    if (reply->type == ICMP_ECHOREPLY && reply->un.echo.id == htons(0x5a5a)) return true;
  }
  return false;
}

TEST_F(ProtocolAttackTest, PingBetweenMeshedPodsIsDeniedInEnforceMode) {
  Start("enforce");
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Icmp", "InEchos"));
  EXPECT_FALSE(Ping(*node_, *thief_, *store_));
  EXPECT_FALSE(Ping(*node_, *buyer_, *store_)) << "a TCP/UDP grant opens no ICMP";
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp(*store_, "Icmp", "InEchos"));
  EXPECT_EQ(after, before) << "an echo request reached the store";
  EXPECT_GE(Counter(SHUNT_CTR_PROTO_DENIED), 2u);
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("\"icmp\""), std::string::npos) << drops;
  EXPECT_NE(drops.find("\"protocol\""), std::string::npos) << drops;
}

TEST_F(ProtocolAttackTest, PingPassesWithAllowIcmpEcho) {
  Start("enforce", {"--allow-icmp-echo"});
  EXPECT_TRUE(Ping(*node_, *thief_, *store_));
  EXPECT_EQ(Counter(SHUNT_CTR_PROTO_DENIED), 0u);
}

TEST_F(ProtocolAttackTest, SctpAndOtherIpProtocolsAreDenied) {
  Start("enforce");
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Ip", "InReceives"));
  for (uint8_t proto : {uint8_t{IPPROTO_SCTP}, uint8_t{253}}) {
    auto s = node_->PodSocket(*thief_, SOCK_RAW, AF_INET, proto);
    ASSERT_TRUE(s.ok()) << s.status();
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
    ASSERT_EQ(
        sendto(s->get(), "0123456789abcdef", 16, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)),
        16);
  }
  ASSERT_OK(CounterReaches(SHUNT_CTR_PROTO_DENIED, 2, "both packets are dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp(*store_, "Ip", "InReceives"));
  EXPECT_EQ(after, before) << "a packet reached the store";
}

// The store has nothing on 5353: its kernel answers the buyer's allowed
// datagram with port unreachable, which must reach the buyer (its connected
// socket reports ECONNREFUSED). A port unreachable the store forges about a
// flow no grant opens is dropped.
TEST_F(ProtocolAttackTest, IcmpErrorsPassOnlyForAnAllowedFlow) {
  Start("enforce");
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, node_->PodSocket(*buyer_, SOCK_DGRAM));
  ASSERT_OK(ConnectTo(c.get(), store_->ip, 5353));
  ASSERT_EQ(send(c.get(), "q", 1, 0), 1);
  pollfd p{c.get(), POLLIN | POLLERR, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the port unreachable never reached the buyer";
  char buf[8];
  EXPECT_EQ(recv(c.get(), buf, sizeof(buf), 0), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  EXPECT_GE(Counter(SHUNT_CTR_ICMP_ERROR_ALLOWED), 1u);

  // Forged: "your datagram to my port 7777 was refused", for a datagram
  // the buyer never sent and no grant allows.
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*buyer_, "Icmp", "InDestUnreachs"));
  std::string inner(sizeof(iphdr) + 8, '\0');
  auto* ip = reinterpret_cast<iphdr*>(inner.data());
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons(sizeof(iphdr) + 8);
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  inet_pton(AF_INET, buyer_->ip.c_str(), &ip->saddr);
  inet_pton(AF_INET, store_->ip.c_str(), &ip->daddr);
  auto* udp = reinterpret_cast<udphdr*>(inner.data() + sizeof(iphdr));
  udp->source = htons(40000);
  udp->dest = htons(7777);
  icmphdr err{};
  err.type = ICMP_DEST_UNREACH;
  err.code = ICMP_PORT_UNREACH;
  std::string icmp(reinterpret_cast<const char*>(&err), sizeof(err));
  icmp += inner;
  const uint16_t sum = Checksum(icmp.data(), icmp.size(), 0);
  std::memcpy(icmp.data() + 2, &sum, 2);
  const uint64_t denied = Counter(SHUNT_CTR_PROTO_DENIED);
  ASSERT_OK(SendFrame(*store_, buyer_->ip, IPPROTO_ICMP, 0, 0x4444, icmp));
  ASSERT_OK(CounterReaches(SHUNT_CTR_PROTO_DENIED, denied + 1, "the forged error is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp(*buyer_, "Icmp", "InDestUnreachs"));
  EXPECT_EQ(after, before);
}

}  // namespace
}  // namespace shunt::e2e
