// The attack suite, NAT on the node: kube-proxy (or any DNAT in the node's
// namespace) can send a pod's connection to an address the pod never named
// — a ClusterIP Shunt does not balance, a NodePort, a hostPort. The
// sender's guard judged the address it saw, so the destination's guard
// judges a local sender's new flow again against the pod it reaches.
// Checked at the store (its accept queues, what its socket reads).
#include "test/e2e/harness/attack_fixture.h"

namespace shunt::e2e {
namespace {

class NatAttackTest : public AttackFixture {
 protected:
  // DNAT in the node's namespace, as kube-proxy's iptables rules do:
  // vip:port (proto) -> the store's port.
  void Dnat(const std::string& vip, uint16_t port, const char* proto, uint16_t to_port) {
    // The pods reach 10.96.7.0/24 through the node (proxy ARP answers for
    // routed addresses only), as they reach kube-proxy's ClusterIPs.
    ASSERT_OK(Sh(absl::StrCat("ip -n ", node_->node_netns(), " route replace 10.96.7.0/24 dev lo"))
                  .status());
    ASSERT_OK(Sh(absl::StrCat("ip netns exec ", node_->node_netns(),
                              " iptables -t nat -A PREROUTING -d ", vip, " -p ", proto, " --dport ",
                              port, " -j DNAT --to-destination ", store_->ip, ":", to_port))
                  .status());
  }
  // connect() from `from` to ip:port, waiting up to `ms` for the handshake.
  bool ConnectsWithin(const TestPod& from, const std::string& ip, uint16_t port, int ms) {
    auto s = node_->PodSocket(from, SOCK_STREAM);
    return s.ok() && e2e::ConnectsWithin(s->get(), ip, port, ms);
  }
};

TEST_F(NatAttackTest, DnatOnTheNodeCannotCarryAConnectionPastPolicy) {
  Dnat("10.96.7.1", 80, "tcp", 9090);  // to a port no one may reach
  Dnat("10.96.7.2", 80, "tcp", 8080);  // to the buyer's granted port
  Start("enforce");
  lib::UniqueFd closed_port = Listen(*store_, 9090);
  lib::UniqueFd open_port = Listen(*store_, 8080);
  // Neither socket hook nor the sender's guard sees a meshed destination.
  EXPECT_FALSE(ConnectsWithin(*thief_, "10.96.7.1", 80, 1500));
  EXPECT_FALSE(ConnectsWithin(*buyer_, "10.96.7.1", 80, 1500));
  EXPECT_FALSE(ConnectsWithin(*thief_, "10.96.7.2", 80, 1500));
  EXPECT_EQ(DrainAccepts(closed_port.get()), 0) << "a NATed connection reached port 9090";
  EXPECT_EQ(DrainAccepts(open_port.get()), 0) << "the thief's NATed connection reached 8080";
  EXPECT_GE(Counter(SHUNT_CTR_TC_LOCAL_DENIED), 3u);
  // What policy allows still works through the same NAT.
  EXPECT_TRUE(ConnectsWithin(*buyer_, "10.96.7.2", 80, 3000));
  pollfd p{open_port.get(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 3000), 1) << "the buyer's NATed connection never arrived";
}

// A UDP exchange through node DNAT: the store's reply comes from its own
// address (the node turns it back into the one asked), and must pass.
TEST_F(NatAttackTest, AUdpExchangeThroughDnatOnTheNodeGetsItsReply) {
  Dnat("10.96.7.3", 53, "udp", 5353);
  Start("enforce");
  lib::UniqueFd server = Listen(*store_, 5353, SOCK_DGRAM);
  auto client = node_->PodSocket(*buyer_, SOCK_DGRAM);
  ASSERT_TRUE(client.ok());
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(53);
  inet_pton(AF_INET, "10.96.7.3", &to.sin_addr);
  ASSERT_EQ(sendto(client->get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1) << "the request never arrived";
  char buf[8];
  sockaddr_in asker{};
  socklen_t len = sizeof(asker);
  ASSERT_EQ(recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&asker), &len),
            1);
  ASSERT_EQ(sendto(server.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&asker), len), 1)
      << strerror(errno);
  pollfd q{client->get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1) << "the reply never came back through the NAT";
  sockaddr_in from{};
  len = sizeof(from);
  ASSERT_EQ(recvfrom(client->get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len),
            1);
  char ip[INET_ADDRSTRLEN];
  EXPECT_STREQ(inet_ntop(AF_INET, &from.sin_addr, ip, sizeof(ip)), "10.96.7.3");
}

}  // namespace
}  // namespace shunt::e2e
