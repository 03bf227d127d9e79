// The attack suite, pods the agent has not learned yet: with --pod-cidrs,
// a new flow to a meshed pod from an address in the cluster's pod ranges
// that no known pod holds (a pod just created, before the API told the
// agent about it, or a pod kept out of the config) is judged as an
// identity without grants — denied in enforce mode, over IPv4 and IPv6 —
// while replies to meshed pods' own requests still reach them. Checked at
// the receiver (its accept queue, what its sockets read) and in drops.
#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

class UnknownPodTest : public AttackFixture {
 protected:
  // The node's pod ranges: 10.S.1.0/24 and fd00:0:S::/64.
  std::string PodCidrs() const {
    const std::string v4 = store_->ip.substr(0, store_->ip.rfind('.')) + ".0/24";
    const std::string v6 = store_->ip6.substr(0, store_->ip6.find("::")) + "::/64";
    return absl::StrCat("--pod-cidrs=", v4, ",", v6);
  }
  // A datagram from `from` to [ip]:port; the sending socket is kept.
  lib::UniqueFd SendUdp(const TestPod& from, const std::string& ip, uint16_t port,
                        const std::string& what) {
    const bool v6 = ip.find(':') != std::string::npos;
    auto s = node_->PodSocket(from, SOCK_DGRAM, v6 ? AF_INET6 : AF_INET);
    EXPECT_TRUE(s.ok());
    if (!s.ok()) return {};
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (v6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr);
      len = sizeof(*a);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_port = htons(port);
      inet_pton(AF_INET, ip.c_str(), &a->sin_addr);
      len = sizeof(*a);
    }
    EXPECT_EQ(sendto(s->get(), what.data(), what.size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
              static_cast<ssize_t>(what.size()))
        << strerror(errno);
    return std::move(*s);
  }
};

TEST_F(UnknownPodTest, APodTheAgentDoesNotKnowGetsNoGrantsInEnforceMode) {
  ASSERT_OK_AND_ASSIGN(TestPod * newcomer,
                       node_->AddPod({.name = "newcomer", .in_config = false, .ipv6 = true}));
  Start("enforce", {PodCidrs()});
  lib::UniqueFd tcp = Listen(*store_, 8080);
  lib::UniqueFd udp4 = Listen(*store_, 5353, SOCK_DGRAM);
  // The newcomer's socket hooks do not know it (no endpoint): its packets
  // meet the store's guard, which does not know its address either.
  auto c = node_->PodSocket(*newcomer, SOCK_STREAM);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(fcntl(c->get(), F_SETFL, O_NONBLOCK), 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(8080);
  inet_pton(AF_INET, store_->ip.c_str(), &to.sin_addr);
  connect(c->get(), reinterpret_cast<sockaddr*>(&to), sizeof(to));
  lib::UniqueFd d4 = SendUdp(*newcomer, store_->ip, 5353, "new4");
  lib::UniqueFd d6 = SendUdp(*newcomer, store_->ip6, 8080, "new6");
  ASSERT_OK(CounterReaches(SHUNT_CTR_TC_POLICY_DENIED, 3, "the newcomer's SYN and datagrams"));
  EXPECT_EQ(DrainAccepts(tcp.get()), 0) << "the newcomer's connection was accepted";
  char buf[16];
  EXPECT_EQ(recv(udp4.get(), buf, sizeof(buf), MSG_DONTWAIT), -1) << "its datagram arrived";
  ASSERT_OK_AND_ASSIGN(std::string drops, Drops());
  EXPECT_NE(drops.find("\"unknown-pod\""), std::string::npos) << drops;
  EXPECT_NE(drops.find(absl::StrCat("\"src_ip\":\"", newcomer->ip6, "\"")), std::string::npos)
      << drops;

  // A meshed pod may still talk to it: the newcomer's answers to the
  // store's own datagram and connection get back.
  lib::UniqueFd answer = Listen(*newcomer, 7000, SOCK_DGRAM);
  lib::UniqueFd ask = SendUdp(*store_, newcomer->ip, 7000, "ask");
  pollfd p{answer.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  sockaddr_in from{};
  socklen_t len = sizeof(from);
  ASSERT_EQ(recvfrom(answer.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len),
            3);
  ASSERT_EQ(sendto(answer.get(), "re", 2, 0, reinterpret_cast<sockaddr*>(&from), len), 2);
  pollfd q{ask.get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1) << "the newcomer's reply never reached the store";
  lib::UniqueFd server = Listen(*newcomer, 7001);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd out, node_->PodSocket(*store_, SOCK_STREAM));
  sockaddr_in nc{};
  nc.sin_family = AF_INET;
  nc.sin_port = htons(7001);
  inet_pton(AF_INET, newcomer->ip.c_str(), &nc.sin_addr);
  EXPECT_EQ(connect(out.get(), reinterpret_cast<sockaddr*>(&nc), sizeof(nc)), 0) << strerror(errno);
}

// Without --pod-cidrs an unknown source is not a meshed pod: untouched.
TEST_F(UnknownPodTest, WithoutPodCidrsAnUnknownPodIsUntouched) {
  ASSERT_OK_AND_ASSIGN(TestPod * newcomer,
                       node_->AddPod({.name = "newcomer", .in_config = false, .ipv6 = true}));
  Start("enforce");
  lib::UniqueFd udp4 = Listen(*store_, 5353, SOCK_DGRAM);
  lib::UniqueFd d4 = SendUdp(*newcomer, store_->ip, 5353, "new4");
  pollfd p{udp4.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1) << "the unknown pod's datagram did not arrive";
}

}  // namespace
}  // namespace shunt::e2e
