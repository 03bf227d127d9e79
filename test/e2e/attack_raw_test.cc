// The attack suite, packets that skip the socket hooks: a raw IP socket, an
// AF_PACKET frame, DNAT inside the pod's own namespace. Each meets at the
// pod's TC guard the verdict connect()/sendto() would have given, checked
// from the store's side: its TCP segment count, the datagrams its socket
// got, the connections it accepted.
#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

using RawAttackTest = AttackFixture;

TEST_F(RawAttackTest, ARawSocketSynMeetsThePolicyVerdictAtTheTcGuard) {
  Start("enforce");
  lib::UniqueFd l = Listen(*store_, 8080);
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Tcp", "InSegs"));

  // The thief's SYN is dropped leaving its pod: the store never sees it.
  ASSERT_OK(RawSyn(*thief_, store_->ip, 8080));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the thief's SYN is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after_thief, Snmp(*store_, "Tcp", "InSegs"));
  EXPECT_EQ(after_thief, before) << "a segment of the thief reached the store";
  // So is the buyer's to a port no route grants.
  ASSERT_OK(RawSyn(*buyer_, store_->ip, 9090));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 2, "the buyer's SYN to 9090"));
  ASSERT_OK_AND_ASSIGN(uint64_t after_9090, Snmp(*store_, "Tcp", "InSegs"));
  EXPECT_EQ(after_9090, before);

  // The same raw SYN from the buyer to its granted port arrives: the check
  // above could not pass by raw SYNs never working.
  ASSERT_OK(RawSyn(*buyer_, store_->ip, 8080));
  EXPECT_OK(Eventually(
      "the buyer's raw SYN reaches the store",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(uint64_t now, Snmp(*store_, "Tcp", "InSegs"));
        if (now > before) return absl::OkStatus();
        return absl::UnavailableError("InSegs unchanged");
      },
      5000));
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("tc-from-pod"), std::string::npos) << drops;
  EXPECT_NE(drops.find(thief_->ip), std::string::npos) << drops;
}

TEST_F(RawAttackTest, AnAfPacketFrameMeetsThePolicyVerdictAtTheTcGuard) {
  Start("enforce");
  lib::UniqueFd sink = Listen(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK(PacketUdp(*thief_, store_->ip, 5353, "thief"));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the thief's frame is dropped"));
  // The buyer's identical frame arrives: the frame itself is sound.
  ASSERT_OK(PacketUdp(*buyer_, store_->ip, 5353, "buyer"));
  pollfd p{sink.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the buyer's frame never arrived";
  char buf[64];
  ssize_t n = recv(sink.get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, n), "buyer");
  EXPECT_EQ(recv(sink.get(), buf, sizeof(buf), MSG_DONTWAIT), -1) << "a second datagram arrived";
}

// Frames with 802.1Q priority tags (VLAN 0): the kernel removes one tag
// before the TC guard and, for VLAN 0, a second one after it, then delivers
// the packet as IPv4 — so a doubly tagged frame would pass a guard that
// lets non-IP frames by. Pods have no VLANs: a frame still tagged at the
// guard is dropped; a singly tagged one is judged as the packet it holds.
TEST_F(RawAttackTest, VlanTaggedFramesCannotSlipPastTheGuard) {
  Start("enforce");
  lib::UniqueFd sink = Listen(*store_, 5353, SOCK_DGRAM);
  auto udp = [](const std::string& payload) {
    std::string l4(sizeof(udphdr), '\0');
    auto* h = reinterpret_cast<udphdr*>(l4.data());
    h->source = htons(41000);
    h->dest = htons(5353);
    h->len = htons(sizeof(udphdr) + payload.size());
    return l4 + payload;
  };
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_UDP, 0, 0x4321, udp("two-tags"), 2));
  ASSERT_OK(
      CounterReaches(SHUNT_CTR_FRAME_UNPARSED_DROPPED, 1, "the doubly tagged frame is dropped"));
  ASSERT_OK(SendFrame(*thief_, store_->ip, IPPROTO_UDP, 0, 0x4322, udp("one-tag"), 1));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the singly tagged frame is judged"));
  char buf[64];
  EXPECT_EQ(recv(sink.get(), buf, sizeof(buf), MSG_DONTWAIT), -1) << "a tagged frame arrived";
  // A singly tagged frame from the buyer is judged, allowed and arrives.
  ASSERT_OK(SendFrame(*buyer_, store_->ip, IPPROTO_UDP, 0, 0x4323, udp("buyer"), 1));
  pollfd p{sink.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the buyer's tagged frame never arrived";
  ssize_t n = recv(sink.get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, n), "buyer");
}

// A pod granted 8080 rewrites its own connection to 9090 with DNAT in its
// namespace: connect() is judged on 8080, the SYN that leaves says 9090.
TEST_F(RawAttackTest, DnatInsideThePodMeetsThePolicyVerdictAtTheTcGuard) {
  Start("enforce");
  lib::UniqueFd l8080 = Listen(*store_, 8080);
  lib::UniqueFd l9090 = Listen(*store_, 9090);
  ASSERT_OK(
      Sh(absl::StrCat("ip netns exec ", buyer_->netns, " iptables -w -t nat -A OUTPUT -p tcp -d ",
                      store_->ip, " --dport 8080 -j DNAT --to-destination ", store_->ip, ":9090")));
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Tcp", "InSegs"));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, node_->PodSocket(*buyer_, SOCK_STREAM));
  ASSERT_EQ(fcntl(c.get(), F_SETFL, O_NONBLOCK), 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(8080);
  inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
  ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), -1);
  ASSERT_EQ(errno, EINPROGRESS) << "connect() itself is judged on 8080, which is granted";
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the rewritten SYN is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp(*store_, "Tcp", "InSegs"));
  EXPECT_EQ(after, before);
  EXPECT_EQ(DrainAccepts(l9090.get()), 0);
  EXPECT_EQ(DrainAccepts(l8080.get()), 0);
}

// One pod's flood of spoofed packets must not fill the denial ring the
// other pods' denials share: events are limited per source identity per
// second, the drops themselves are not, and another pod's denial is still
// reported.
TEST_F(RawAttackTest, ASpoofFloodCannotDrownOtherPodsDenials) {
  Start("enforce");
  auto raw = node_->PodSocket(*thief_, SOCK_RAW, AF_INET, IPPROTO_RAW);
  ASSERT_TRUE(raw.ok()) << raw.status();
  constexpr int kFlood = 3000;
  std::string packet(sizeof(iphdr) + sizeof(udphdr) + 4, '\0');
  auto* ip = reinterpret_cast<iphdr*>(packet.data());
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons(packet.size());
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  inet_pton(AF_INET, "10.250.0.1", &ip->saddr);  // not the thief's address
  inet_pton(AF_INET, store_->ip.c_str(), &ip->daddr);
  auto* udp = reinterpret_cast<udphdr*>(packet.data() + sizeof(iphdr));
  udp->source = htons(1);
  udp->dest = htons(5353);
  udp->len = htons(sizeof(udphdr) + 4);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_addr.s_addr = ip->daddr;
  for (int i = 0; i < kFlood; ++i)
    ASSERT_EQ(sendto(raw->get(), packet.data(), packet.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof(to)),
              static_cast<ssize_t>(packet.size()));
  ASSERT_OK(CounterReaches(SHUNT_CTR_SPOOF_DROPPED, kFlood, "every spoofed packet is dropped"));
  // At most 200 events per second of the flood were sent on.
  EXPECT_GE(Counter(SHUNT_CTR_EVENTS_RATE_LIMITED), static_cast<uint64_t>(kFlood) / 2);
  EXPECT_EQ(Counter(SHUNT_CTR_EVENTS_LOST), 0u);
  // The buyer's denial right after is reported.
  lib::UniqueFd l = Listen(*store_, 9090);
  auto c = node_->PodSocket(*buyer_, SOCK_STREAM);
  ASSERT_TRUE(c.ok());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(9090);
  inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
  ASSERT_EQ(connect(c->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), -1);
  ASSERT_EQ(errno, EPERM);
  EXPECT_OK(Eventually(
      "the buyer's denial is in shuntctl drops",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(std::string drops, Drops());
        if (drops.find("\"dst_port\":9090") != std::string::npos) return absl::OkStatus();
        return absl::UnavailableError("not yet");
      },
      5000));
}

// Permissive mode lets the raw SYN through and counts it, without a second
// report of what the socket hooks already report.
TEST_F(RawAttackTest, PermissiveModeCountsARawSynAndLetsItThrough) {
  Start("permissive");
  lib::UniqueFd l = Listen(*store_, 8080);
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Tcp", "InSegs"));
  ASSERT_OK(RawSyn(*thief_, store_->ip, 8080));
  EXPECT_OK(Eventually(
      "the thief's raw SYN reaches the store",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(uint64_t now, Snmp(*store_, "Tcp", "InSegs"));
        if (now > before) return absl::OkStatus();
        return absl::UnavailableError("InSegs unchanged");
      },
      5000));
  EXPECT_EQ(Counter(SHUNT_CTR_TC_LOCAL_WOULD_DENY), 1u);
  EXPECT_EQ(Counter(SHUNT_CTR_TC_LOCAL_DENIED), 0u);
}

}  // namespace
}  // namespace shunt::e2e
