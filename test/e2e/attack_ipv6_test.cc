// The attack suite over native IPv6, on dual-stack pods (each has an IPv6
// address in status.podIPs): the pods' IPv6 addresses carry their
// identities, so IPv6 meets the same verdicts as IPv4 — at connect6 and
// sendmsg6 for sockets, at the TC guards for raw sockets, forged sources,
// other protocols and fragments — and UDP request/response works. Checked
// at the receiver (its accept queue, what its socket reads, its own
// /proc/net/snmp6 counters) and in `shuntctl drops`.
#include <netinet/icmp6.h>
#include <netinet/ip6.h>

#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

sockaddr_in6 Addr6(const std::string& ip6, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip6.c_str(), &a.sin6_addr);
  return a;
}

class Ipv6AttackTest : public AttackFixture {
 protected:
  // An AF_INET6-only socket of `pod` bound to [::]:port (listening for TCP).
  lib::UniqueFd Listen6(const TestPod& pod, uint16_t port, int type = SOCK_STREAM) {
    auto l = node_->PodSocket(pod, type, AF_INET6);
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return {};
    int one = 1;
    setsockopt(l->get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    sockaddr_in6 a = Addr6("::", port);
    EXPECT_EQ(bind(l->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(listen(l->get(), 64), 0);
    }
    return std::move(*l);
  }

  // connect() from `from` to [ip6]:port; 0 or the errno.
  int Connect6(const TestPod& from, int type, const std::string& ip6, uint16_t port,
               lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, type, AF_INET6);
    if (!s.ok()) return -1;
    sockaddr_in6 a = Addr6(ip6, port);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // A counter of the pod's IPv6 stack (/proc/net/snmp6), e.g. "Udp6InDatagrams".
  absl::StatusOr<uint64_t> Snmp6(const TestPod& pod, const std::string& name) {
    SHUNT_ASSIGN_OR_RETURN(std::string snmp,
                           Sh("ip netns exec " + pod.netns + " cat /proc/net/snmp6"));
    std::istringstream in(snmp);
    std::string n;
    uint64_t v = 0;
    while (in >> n >> v)
      if (n == name) return v;
    return absl::NotFoundError("no " + name + " in /proc/net/snmp6");
  }

  // Sends an IPv6 packet whose header is ours (source included) from
  // `from`'s namespace: `next` is the header after it, `payload` the rest.
  absl::Status RawIpv6(const TestPod& from, const std::string& src, const std::string& dst,
                       uint8_t next, const std::string& payload) {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s,
                           node_->PodSocket(from, SOCK_RAW, AF_INET6, IPPROTO_RAW));
    std::string pkt(sizeof(ip6_hdr), '\0');
    auto* ip = reinterpret_cast<ip6_hdr*>(pkt.data());
    ip->ip6_flow = htonl(6u << 28);
    ip->ip6_plen = htons(payload.size());
    ip->ip6_nxt = next;
    ip->ip6_hlim = 64;
    inet_pton(AF_INET6, src.c_str(), &ip->ip6_src);
    inet_pton(AF_INET6, dst.c_str(), &ip->ip6_dst);
    pkt += payload;
    sockaddr_in6 to = Addr6(dst, 0);
    if (sendto(s.get(), pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
        static_cast<ssize_t>(pkt.size()))
      return absl::InternalError(absl::StrCat("raw IPv6 sendto: ", strerror(errno)));
    return absl::OkStatus();
  }

  // A UDP datagram (header, checksum and payload) from src to dst:dport.
  static std::string Udp6(const std::string& src, const std::string& dst, uint16_t dport,
                          const std::string& payload) {
    std::string l4(sizeof(udphdr), '\0');
    auto* udp = reinterpret_cast<udphdr*>(l4.data());
    udp->source = htons(41000);
    udp->dest = htons(dport);
    udp->len = htons(sizeof(udphdr) + payload.size());
    l4 += payload;
    // The pseudo-header: addresses, upper-layer length, next header.
    uint8_t pseudo[40] = {};
    inet_pton(AF_INET6, src.c_str(), pseudo);
    inet_pton(AF_INET6, dst.c_str(), pseudo + 16);
    pseudo[34] = static_cast<uint8_t>(l4.size() >> 8);
    pseudo[35] = static_cast<uint8_t>(l4.size());
    pseudo[39] = IPPROTO_UDP;
    uint32_t sum = 0;
    for (int i = 0; i < 40; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
    reinterpret_cast<udphdr*>(l4.data())->check = Checksum(l4.data(), l4.size(), sum);
    return l4;
  }

  // An ICMPv6 echo request from `from` to `to`; true when the reply came back.
  bool Ping6(const TestPod& from, const TestPod& to) {
    auto s = node_->PodSocket(from, SOCK_RAW, AF_INET6, IPPROTO_ICMPV6);
    if (!s.ok()) return false;
    icmp6_hdr echo{};
    echo.icmp6_type = ICMP6_ECHO_REQUEST;
    echo.icmp6_id = htons(0x5a5a);
    echo.icmp6_seq = htons(1);
    sockaddr_in6 a = Addr6(to.ip6, 0);
    if (sendto(s->get(), &echo, sizeof(echo), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
      return false;
    for (int i = 0; i < 10; ++i) {
      pollfd p{s->get(), POLLIN, 0};
      if (poll(&p, 1, 100) != 1) continue;
      icmp6_hdr reply{};
      if (recv(s->get(), &reply, sizeof(reply), 0) < static_cast<ssize_t>(sizeof(reply))) continue;
      if (reply.icmp6_type == ICMP6_ECHO_REPLY && reply.icmp6_id == htons(0x5a5a)) return true;
    }
    return false;
  }

  // Waits for one connection on `listener`.
  static bool Accepts(int listener) {
    pollfd p{listener, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    lib::UniqueFd c(accept(listener, nullptr, nullptr));
    return c.get() >= 0;
  }
};

TEST_F(Ipv6AttackTest, NativeIpv6ConnectMeetsTheSameVerdictAsIpv4) {
  Start("enforce");
  lib::UniqueFd open_port = Listen6(*store_, 8080);
  lib::UniqueFd closed_port = Listen6(*store_, 9090);
  EXPECT_EQ(Connect6(*thief_, SOCK_STREAM, store_->ip6, 8080), EPERM);
  EXPECT_EQ(Connect6(*buyer_, SOCK_STREAM, store_->ip6, 9090), EPERM)
      << "the buyer's grant is for 8080 only";
  lib::UniqueFd client;
  EXPECT_EQ(Connect6(*buyer_, SOCK_STREAM, store_->ip6, 8080, &client), 0);
  EXPECT_TRUE(Accepts(open_port.get())) << "the allowed connection did not arrive";
  EXPECT_EQ(DrainAccepts(closed_port.get()), 0);
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find(absl::StrCat("\"dst_ip\":\"", store_->ip6, "\"")), std::string::npos)
      << drops;
  EXPECT_NE(drops.find(absl::StrCat("\"src_ip\":\"", thief_->ip6, "\"")), std::string::npos)
      << drops;
  EXPECT_NE(drops.find("\"connect6\""), std::string::npos) << drops;
}

TEST_F(Ipv6AttackTest, PermissiveModeReportsNativeIpv6AndDeniesNothing) {
  Start("permissive");
  lib::UniqueFd open_port = Listen6(*store_, 9090);
  EXPECT_EQ(Connect6(*thief_, SOCK_STREAM, store_->ip6, 9090), 0);
  EXPECT_TRUE(Accepts(open_port.get()));
  ASSERT_OK(Eventually(
      "the would-be denial is in drops",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(std::string drops, Drops());
        if (drops.find(absl::StrCat("\"dst_ip\":\"", store_->ip6, "\"")) != std::string::npos &&
            drops.find("\"enforced\":false") != std::string::npos)
          return absl::OkStatus();
        return absl::UnavailableError(drops);
      },
      5000));
}

TEST_F(Ipv6AttackTest, UdpRequestAndReplyWorkOverIpv6AndUnsolicitedDatagramsDoNot) {
  Start("enforce");
  lib::UniqueFd server = Listen6(*store_, 5353, SOCK_DGRAM);
  auto client = node_->PodSocket(*buyer_, SOCK_DGRAM, AF_INET6);
  ASSERT_TRUE(client.ok());
  sockaddr_in6 to = Addr6(store_->ip6, 5353);
  ASSERT_EQ(sendto(client->get(), "query", 5, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 5)
      << strerror(errno);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the allowed datagram did not arrive";
  char buf[64];
  sockaddr_in6 from{};
  socklen_t len = sizeof(from);
  ASSERT_EQ(recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len),
            5);
  EXPECT_EQ(Ip6String(from.sin6_addr), buyer_->ip6);
  // The server answers from its unconnected socket: a reply, allowed.
  ASSERT_EQ(sendto(server.get(), "answer", 6, 0, reinterpret_cast<sockaddr*>(&from), len), 6)
      << strerror(errno);
  pollfd q{client->get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1) << "the reply did not reach the client";
  EXPECT_EQ(recv(client->get(), buf, sizeof(buf), 0), 6);
  // Not a reply: another port of the client, and a pod that never asked.
  sockaddr_in6 other = from;
  other.sin6_port = htons(ntohs(from.sin6_port) + 1);
  EXPECT_EQ(sendto(server.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&other), len), -1);
  EXPECT_EQ(errno, EPERM);
  sockaddr_in6 thief = Addr6(thief_->ip6, ntohs(from.sin6_port));
  EXPECT_EQ(sendto(server.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&thief), len), -1);
  EXPECT_EQ(errno, EPERM);
  // And the thief's own request is refused.
  auto t = node_->PodSocket(*thief_, SOCK_DGRAM, AF_INET6);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(sendto(t->get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), -1);
  EXPECT_EQ(errno, EPERM);
}

TEST_F(Ipv6AttackTest, ARawIpv6SynMeetsPolicyAtTheGuard) {
  Start("enforce");
  lib::UniqueFd listener = Listen6(*store_, 8080);
  auto syn = [&](const TestPod& from) -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s,
                           node_->PodSocket(from, SOCK_RAW, AF_INET6, IPPROTO_TCP));
    int offset = 16;  // the kernel fills in the TCP checksum
    if (setsockopt(s.get(), IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof(offset)) != 0)
      return absl::InternalError(absl::StrCat("IPV6_CHECKSUM: ", strerror(errno)));
    tcphdr tcp{};
    tcp.source = htons(40123);
    tcp.dest = htons(8080);
    tcp.seq = htonl(0x5eed);
    tcp.doff = 5;
    tcp.syn = 1;
    tcp.window = htons(65535);
    sockaddr_in6 to = Addr6(store_->ip6, 0);
    if (sendto(s.get(), &tcp, sizeof(tcp), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) !=
        static_cast<ssize_t>(sizeof(tcp)))
      return absl::InternalError(absl::StrCat("raw sendto: ", strerror(errno)));
    return absl::OkStatus();
  };
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp(*store_, "Tcp", "InSegs"));
  ASSERT_OK(syn(*thief_));
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_LOCAL_DENIED, 1, "the thief's SYN is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp(*store_, "Tcp", "InSegs"));
  EXPECT_EQ(after, before) << "the thief's raw SYN reached the store";
  // The same SYN from the buyer reaches it: the check above can fail.
  ASSERT_OK(syn(*buyer_));
  ASSERT_OK(Eventually(
      "the buyer's raw SYN reaches the store",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(uint64_t now, Snmp(*store_, "Tcp", "InSegs"));
        if (now > after) return absl::OkStatus();
        return absl::UnavailableError("no segment yet");
      },
      5000));
}

TEST_F(Ipv6AttackTest, AForgedIpv6SourceIsDropped) {
  Start("enforce");
  lib::UniqueFd server = Listen6(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp6(*store_, "Udp6InDatagrams"));
  // The thief writes the buyer's address as the source of a datagram the
  // buyer may send.
  ASSERT_OK(RawIpv6(*thief_, buyer_->ip6, store_->ip6, IPPROTO_UDP,
                    Udp6(buyer_->ip6, store_->ip6, 5353, "forged")));
  ASSERT_OK(CounterReaches(SHUNT_CTR_SPOOF_DROPPED, 1, "the forged datagram is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp6(*store_, "Udp6InDatagrams"));
  EXPECT_EQ(after, before) << "a forged datagram reached the store";
  // The same datagram from the buyer itself arrives.
  ASSERT_OK(RawIpv6(*buyer_, buyer_->ip6, store_->ip6, IPPROTO_UDP,
                    Udp6(buyer_->ip6, store_->ip6, 5353, "honest")));
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the buyer's own datagram did not arrive";
  char buf[16];
  EXPECT_EQ(recv(server.get(), buf, sizeof(buf), 0), 6);
}

TEST_F(Ipv6AttackTest, Icmpv6EchoIsDeniedUnlessAllowed) {
  Start("enforce");
  ASSERT_OK_AND_ASSIGN(uint64_t before, Snmp6(*store_, "Icmp6InEchos"));
  EXPECT_FALSE(Ping6(*thief_, *store_));
  EXPECT_FALSE(Ping6(*buyer_, *store_)) << "a TCP/UDP grant opens no ICMPv6 echo";
  ASSERT_OK_AND_ASSIGN(uint64_t after, Snmp6(*store_, "Icmp6InEchos"));
  EXPECT_EQ(after, before) << "an echo request reached the store";
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("\"icmpv6\""), std::string::npos) << drops;
}

TEST_F(Ipv6AttackTest, Icmpv6EchoPassesWithAllowIcmpEcho) {
  Start("enforce", {"--allow-icmp-echo"});
  EXPECT_TRUE(Ping6(*thief_, *store_));
}

TEST_F(Ipv6AttackTest, AnOrphanIpv6FragmentIsDroppedAndAllowedFragmentsArriveWhole) {
  Start("enforce");
  lib::UniqueFd server = Listen6(*store_, 5353, SOCK_DGRAM);
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_before, Snmp6(*store_, "Ip6ReasmReqds"));
  // A later fragment (offset 8 bytes, last) of a datagram whose first
  // fragment never passed, even from the buyer.
  std::string frag(8, '\0');
  frag[0] = IPPROTO_UDP;
  frag[3] = 1 << 3;  // offset 1 (in 8-byte units), M = 0
  frag[4] = 0x12;
  frag[7] = 0x34;
  ASSERT_OK(
      RawIpv6(*buyer_, buyer_->ip6, store_->ip6, IPPROTO_FRAGMENT, frag + std::string(16, 'x')));
  ASSERT_OK(CounterReaches(SHUNT_CTR_FRAGMENT_DROPPED, 1, "the orphan fragment is dropped"));
  ASSERT_OK_AND_ASSIGN(uint64_t reasm_after, Snmp6(*store_, "Ip6ReasmReqds"));
  EXPECT_EQ(reasm_after, reasm_before) << "the orphan fragment reached the store";

  // A 4000-byte datagram the buyer may send is fragmented on the way (MTU
  // 1500) and arrives whole.
  auto client = node_->PodSocket(*buyer_, SOCK_DGRAM, AF_INET6);
  ASSERT_TRUE(client.ok());
  const std::string big(4000, 'b');
  sockaddr_in6 to = Addr6(store_->ip6, 5353);
  ASSERT_EQ(sendto(client->get(), big.data(), big.size(), 0, reinterpret_cast<sockaddr*>(&to),
                   sizeof(to)),
            4000);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the fragmented datagram did not arrive";
  std::string got(5000, '\0');
  EXPECT_EQ(recv(server.get(), got.data(), got.size(), 0), 4000);
  ASSERT_OK_AND_ASSIGN(uint64_t oks, Snmp6(*store_, "Ip6ReasmOKs"));
  EXPECT_GE(oks, 1u);
}

}  // namespace
}  // namespace shunt::e2e
