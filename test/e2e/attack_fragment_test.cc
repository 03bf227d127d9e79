// The attack suite, IPv4 fragments: a first fragment too short to show its
// ports and flags is dropped (the tiny-fragment attack, RFC 1858), later
// fragments pass only behind a first fragment that passed, and a datagram
// of an allowed flow that the sender's stack fragments still arrives whole.
// Checked at the store by its own reassembly counters (/proc/net/snmp).
#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

using FragmentAttackTest = AttackFixture;

constexpr uint16_t kMoreFragments = 0x2000;

TEST_F(FragmentAttackTest, ATinyFirstFragmentCannotSmuggleASyn) {
  Start("enforce");
  lib::UniqueFd l = Listen(*store_, 8080);
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_before, Snmp(*store_, "Ip", "ReasmReqds"));
  ASSERT_OK_AND_ASSIGN(uint64_t segs_before, Snmp(*store_, "Tcp", "InSegs"));
  // The thief's SYN cut after the ports: the flags travel in the second
  // fragment (offset 8 bytes).
  const std::string syn = SynHeader(thief_->ip, store_->ip, 8080);
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_TCP, kMoreFragments, 0x4242, syn.substr(0, 8)));
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_TCP, 1, 0x4242, syn.substr(8)));
  ASSERT_OK(CounterReaches(SHUNT_CTR_FRAGMENT_DROPPED, 2, "both fragments are dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_after, Snmp(*store_, "Ip", "ReasmReqds"));
  ASSERT_OK_AND_ASSIGN(uint64_t segs_after, Snmp(*store_, "Tcp", "InSegs"));
  EXPECT_EQ(reasm_after, reasm_before) << "a fragment reached the store";
  EXPECT_EQ(segs_after, segs_before);
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("\"fragment\""), std::string::npos) << drops;
}

TEST_F(FragmentAttackTest, LaterFragmentsOfADeniedDatagramAreDropped) {
  Start("enforce");
  lib::UniqueFd sink = Listen(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_before, Snmp(*store_, "Ip", "ReasmReqds"));
  // A 16-byte datagram in two fragments: UDP header and 8 bytes, then 8.
  std::string udp(sizeof(udphdr), '\0');
  auto* h = reinterpret_cast<udphdr*>(udp.data());
  h->source = htons(41000);
  h->dest = htons(5353);
  h->len = htons(sizeof(udphdr) + 16);
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_UDP, kMoreFragments, 0x4343, udp + "AAAAAAAA"));
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_UDP, 2, 0x4343, "BBBBBBBB"));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the first fragment is denied"));
  ASSERT_OK(CounterReaches(SHUNT_CTR_FRAGMENT_DROPPED, 1, "the later one is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_after, Snmp(*store_, "Ip", "ReasmReqds"));
  EXPECT_EQ(reasm_after, reasm_before) << "a fragment reached the store";
  char buf[64];
  EXPECT_EQ(recv(sink.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
}

TEST_F(FragmentAttackTest, AFragmentedDatagramOfAnAllowedFlowArrivesWhole) {
  Start("enforce");
  lib::UniqueFd sink = Listen(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_before, Snmp(*store_, "Ip", "ReasmOKs"));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, node_->PodSocket(*buyer_, SOCK_DGRAM));
  const std::string big = RandomBytes(4000, 11);  // > the veth's 1500-byte MTU
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5353);
  inet_pton(AF_INET, store_->ip.c_str(), &to.sin_addr);
  ASSERT_EQ(
      sendto(c.get(), big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
      static_cast<ssize_t>(big.size()));
  pollfd p{sink.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the fragmented datagram never arrived";
  std::string got(8192, '\0');
  ssize_t n = recv(sink.get(), got.data(), got.size(), 0);
  ASSERT_EQ(n, static_cast<ssize_t>(big.size()));
  got.resize(n);
  EXPECT_EQ(Fnv1a(got), Fnv1a(big));
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_after, Snmp(*store_, "Ip", "ReasmOKs"));
  EXPECT_EQ(reasm_after, reasm_before + 1) << "the datagram was not fragmented on the way";
  EXPECT_EQ(Counter(SHUNT_CTR_FRAGMENT_DROPPED), 0u);
}

}  // namespace
}  // namespace shunt::e2e
