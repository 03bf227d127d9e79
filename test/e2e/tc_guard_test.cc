// The TC guards on the node side of each pod's veth: packets a pod sends
// from an address that is not its own are dropped, and new connections or
// datagrams from meshed pods on other nodes are judged by SMI policy.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/udp.h>
#include <poll.h>
#include <sys/socket.h>

#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/attack_fixture.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class SpoofTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh();
  }
};

TEST_F(SpoofTest, PacketsFromAnotherSourceAddressAreDropped) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
  for (const auto& p : st["local_pods"]) EXPECT_EQ(p["tc_guarded"], true) << p.dump();
  // The client pod gives itself a second address and uses it as source.
  const std::string forged = client_->ip.substr(0, client_->ip.rfind('.')) + ".99";
  ASSERT_OK(Sh(absl::StrCat("ip -n ", client_->netns, " addr add ", forged, "/32 dev eth0")));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, node_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7701));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, node_->PodSocket(*client_, SOCK_STREAM));
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, forged.c_str(), &src.sin_addr);
  ASSERT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)), 0) << strerror(errno);
  EXPECT_FALSE(ConnectsWithin(s.get(), server_->ip, 7701, 1500)) << "a spoofed SYN got through";
  EXPECT_GE(Counter(SHUNT_CTR_SPOOF_DROPPED), 1u);
  // Its own address still works.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd ok, node_->PodSocket(*client_, SOCK_STREAM));
  EXPECT_TRUE(ConnectsWithin(ok.get(), server_->ip, 7701, 2000));
  // Permissive mode also reports the would-be policy denials of these
  // connects (no TrafficTarget exists); the spoofed SYN is among them.
  int spoofed = 0;
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> all, ShuntctlDrops(*node_));
  for (const auto& d : all) {
    if (d["type"] != "spoofed-source") continue;
    ++spoofed;
    EXPECT_EQ(d["src_ip"], forged);
    EXPECT_EQ(d["hook"], "tc");
    EXPECT_EQ(d["enforced"], true);
  }
  EXPECT_GE(spoofed, 1);
}

constexpr char kStorePolicy[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: store-port, namespace: store}
spec: {matches: {ports: [8080]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: store-dns, namespace: store}
spec: {matches: {ports: [5353]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: buyer-to-store, namespace: store}
spec:
  destination: {kind: ServiceAccount, name: store, namespace: store}
  sources: [{kind: ServiceAccount, name: buyer, namespace: buyer}]
  rules: [{kind: TCPRoute, name: store-port}, {kind: UDPRoute, name: store-dns}]
)";

// The store on node 1 (enforce); buyer and thief on node 2, whose agent is
// permissive so the client side lets everything out and node 1's TC guard
// is what decides.
class CrossNodePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(n1_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(n2_, TestNode::Create("n2"));
    ASSERT_OK_AND_ASSIGN(
        store_,
        n1_->AddPod(
            {.name = "store", .namespace_ = "store", .service_account = "store", .ipv6 = true}));
    ASSERT_OK_AND_ASSIGN(
        buyer_,
        n2_->AddPod(
            {.name = "buyer", .namespace_ = "buyer", .service_account = "buyer", .ipv6 = true}));
    ASSERT_OK_AND_ASSIGN(
        thief_,
        n2_->AddPod(
            {.name = "thief", .namespace_ = "thief", .service_account = "thief", .ipv6 = true}));
    ASSERT_OK(TestNode::Link(*n1_, *n2_));
    for (TestNode* n : {n1_.get(), n2_.get()})
      ASSERT_OK(n->WriteConfigFile("policy.yaml", kStorePolicy));
    ASSERT_OK(n1_->WriteManifests({n2_.get()}));
    ASSERT_OK(n2_->WriteManifests({n1_.get()}));
    ASSERT_OK(n1_->StartAgent({"--mode=enforce"}));
    ASSERT_OK(n2_->StartAgent({"--mode=permissive"}));
    ASSERT_OK(n1_->WaitMeshed());
    ASSERT_OK(n2_->WaitMeshed());
  }
  void TearDown() override {
    if (HasFailure() && n1_)
      std::fprintf(stderr, "--- n1 agent ---\n%s\n", n1_->AgentLog().c_str());
    n1_.reset();
    n2_.reset();
  }
  uint64_t N1(int idx) {
    auto c = n1_->Counters();
    return c.ok() ? (*c)[idx] : 0;
  }
  // A datagram from `from` to the store; true if it arrived.
  bool DatagramArrives(const TestPod& from, int listener) {
    auto s = n2_->PodSocket(from, SOCK_DGRAM);
    if (!s.ok()) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(5353);
    inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
    sendto(s->get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    pollfd p{listener, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return false;
    char buf[8];
    return recv(listener, buf, sizeof(buf), 0) == 1;
  }

  std::unique_ptr<TestNode> n1_, n2_;
  TestPod *store_ = nullptr, *buyer_ = nullptr, *thief_ = nullptr;
};

TEST_F(CrossNodePolicyTest, RemoteClientsAreJudgedByTheirIdentityAtTheDestination) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*store_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 8080));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd b, n2_->PodSocket(*buyer_, SOCK_STREAM));
  EXPECT_TRUE(ConnectsWithin(b.get(), store_->ip, 8080, 3000)) << "the allowed remote client";
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd t, n2_->PodSocket(*thief_, SOCK_STREAM));
  EXPECT_FALSE(ConnectsWithin(t.get(), store_->ip, 8080, 1500)) << "the denied remote client";
  EXPECT_GE(N1(SHUNT_CTR_TC_POLICY_DENIED), 1u);
  EXPECT_GE(N1(SHUNT_CTR_TC_POLICY_ALLOWED), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  ASSERT_FALSE(drops.empty());
  EXPECT_EQ(drops[0]["hook"], "tc");
  EXPECT_EQ(drops[0]["src_ip"], thief_->ip);
  EXPECT_EQ(drops[0]["dst_port"], 8080);
  EXPECT_EQ(drops[0]["enforced"], true);
}

TEST_F(CrossNodePolicyTest, RemoteDatagramsFollowUdpRoutes) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd u, n1_->PodSocket(*store_, SOCK_DGRAM));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(5353);
  ASSERT_EQ(bind(u.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_TRUE(DatagramArrives(*buyer_, u.get()));
  EXPECT_FALSE(DatagramArrives(*thief_, u.get()));
  EXPECT_GE(N1(SHUNT_CTR_TC_POLICY_DENIED), 1u);
}

// The same over IPv6 (dual-stack pods): node 1's guard judges the remote
// pods by their IPv6 addresses, and an allowed datagram's reply goes back.
TEST_F(CrossNodePolicyTest, RemoteIpv6ClientsAreJudgedByTheirIdentityAtTheDestination) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*store_, SOCK_STREAM, AF_INET6));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(8080);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  ASSERT_EQ(listen(l.get(), 16), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd b, n2_->PodSocket(*buyer_, SOCK_STREAM, AF_INET6));
  EXPECT_TRUE(ConnectsWithin(b.get(), store_->ip6, 8080, 3000)) << "the allowed remote client";
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd t, n2_->PodSocket(*thief_, SOCK_STREAM, AF_INET6));
  EXPECT_FALSE(ConnectsWithin(t.get(), store_->ip6, 8080, 1500)) << "the denied remote client";
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  bool seen = false;
  for (const auto& d : drops)
    seen |= d["src_ip"] == thief_->ip6 && d["dst_ip"] == store_->ip6 && d["hook"] == "tc" &&
            d["enforced"] == true;
  EXPECT_TRUE(seen) << nlohmann::json(drops).dump();

  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, n1_->PodSocket(*store_, SOCK_DGRAM, AF_INET6));
  any.sin6_port = htons(5353);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(5353);
  inet_pton(AF_INET6, store_->ip6.c_str(), &to.sin6_addr);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd stranger, n2_->PodSocket(*thief_, SOCK_DGRAM, AF_INET6));
  ASSERT_EQ(sendto(stranger.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd client, n2_->PodSocket(*buyer_, SOCK_DGRAM, AF_INET6));
  ASSERT_EQ(sendto(client.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  char buf[16];
  sockaddr_in6 asker{};
  socklen_t len = sizeof(asker);
  ASSERT_EQ(recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&asker), &len),
            1);
  EXPECT_EQ(buf[0], 'q') << "the thief's datagram came first: it got through";
  ASSERT_EQ(sendto(server.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&asker), len), 1)
      << strerror(errno);
  pollfd q{client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1) << "the store's reply never reached the remote buyer";
  EXPECT_EQ(recv(server.get(), buf, sizeof(buf), MSG_DONTWAIT), -1) << "a second datagram came";
}

// A packet from another node (here node 2's own namespace, as a
// compromised node or anything on the wire could send it) claiming the
// address of a pod on node 1: node 1's guard used to take it as judged
// leaving that local pod. Only what came through the pod's own veth is.
TEST_F(CrossNodePolicyTest, APacketFromAnotherNodeClaimingALocalPodsAddressIsDropped) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, n1_->PodSocket(*store_, SOCK_DGRAM, AF_INET6));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(5353);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)),
            0);  // both families
  const uint64_t spoofed = N1(SHUNT_CTR_SPOOF_DROPPED);

  // IPv4: header and UDP (checksum 0: none) written by us.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd raw4, n2_->NodeSocket(SOCK_RAW, AF_INET, IPPROTO_RAW));
  std::string p4(sizeof(iphdr) + sizeof(udphdr), '\0');
  p4 += "claim4";
  auto* ip = reinterpret_cast<iphdr*>(p4.data());
  ip->version = 4;
  ip->ihl = 5;
  ip->tot_len = htons(p4.size());
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  inet_pton(AF_INET, store_->ip.c_str(), &ip->saddr);
  inet_pton(AF_INET, store_->ip.c_str(), &ip->daddr);
  auto* udp = reinterpret_cast<udphdr*>(p4.data() + sizeof(iphdr));
  udp->source = htons(41000);
  udp->dest = htons(5353);
  udp->len = htons(p4.size() - sizeof(iphdr));
  sockaddr_in to4{};
  to4.sin_family = AF_INET;
  to4.sin_addr.s_addr = ip->daddr;
  ASSERT_EQ(
      sendto(raw4.get(), p4.data(), p4.size(), 0, reinterpret_cast<sockaddr*>(&to4), sizeof(to4)),
      static_cast<ssize_t>(p4.size()))
      << strerror(errno);

  // IPv6: the same, with the checksum IPv6 requires.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd raw6, n2_->NodeSocket(SOCK_RAW, AF_INET6, IPPROTO_RAW));
  std::string l4(sizeof(udphdr), '\0');
  l4 += "claim6";
  auto* u6 = reinterpret_cast<udphdr*>(l4.data());
  u6->source = htons(41000);
  u6->dest = htons(5353);
  u6->len = htons(l4.size());
  uint8_t pseudo[40] = {};
  inet_pton(AF_INET6, store_->ip6.c_str(), pseudo);
  inet_pton(AF_INET6, store_->ip6.c_str(), pseudo + 16);
  pseudo[35] = static_cast<uint8_t>(l4.size());
  pseudo[39] = IPPROTO_UDP;
  uint32_t sum = 0;
  for (int i = 0; i < 40; i += 2) sum += (pseudo[i] << 8) | pseudo[i + 1];
  u6->check = AttackFixture::Checksum(l4.data(), l4.size(), sum);
  std::string p6(sizeof(ip6_hdr), '\0');
  auto* h6 = reinterpret_cast<ip6_hdr*>(p6.data());
  h6->ip6_flow = htonl(6u << 28);
  h6->ip6_plen = htons(l4.size());
  h6->ip6_nxt = IPPROTO_UDP;
  h6->ip6_hlim = 64;
  std::memcpy(&h6->ip6_src, pseudo, 16);
  std::memcpy(&h6->ip6_dst, pseudo + 16, 16);
  p6 += l4;
  sockaddr_in6 to6{};
  to6.sin6_family = AF_INET6;
  std::memcpy(&to6.sin6_addr, pseudo + 16, 16);
  ASSERT_EQ(
      sendto(raw6.get(), p6.data(), p6.size(), 0, reinterpret_cast<sockaddr*>(&to6), sizeof(to6)),
      static_cast<ssize_t>(p6.size()))
      << strerror(errno);

  ASSERT_OK(Eventually(
      "node 1 drops both claims",
      [&]() -> absl::Status {
        if (N1(SHUNT_CTR_SPOOF_DROPPED) >= spoofed + 2) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat("spoof drops ", N1(SHUNT_CTR_SPOOF_DROPPED)));
      },
      5000));
  char buf[16];
  EXPECT_EQ(recv(server.get(), buf, sizeof(buf), MSG_DONTWAIT), -1) << "a claim reached the store";
  // The store's own traffic to itself and the buyer's allowed datagrams
  // still arrive (the buyer's over both families).
  EXPECT_TRUE(DatagramArrives(*buyer_, server.get()));
}

// UDP reply tracking across nodes, both ways through node 1 (enforce): a
// remote client's allowed datagram opens the way back at the store's TC
// guard (its reply passes sendto() and the guard), and the store's own
// request to a remote server opens the way for that server's reply into the
// store; an unasked datagram from the same server is still dropped.
TEST_F(CrossNodePolicyTest, UdpRepliesCrossNodesBothWays) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, n1_->PodSocket(*store_, SOCK_DGRAM));
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_port = htons(5353);
  ASSERT_EQ(bind(server.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd client, n2_->PodSocket(*buyer_, SOCK_DGRAM));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(5353);
  inet_pton(AF_INET, store_->ip.c_str(), &to.sin_addr);
  ASSERT_EQ(sendto(client.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1);
  pollfd p{server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  char buf[16];
  sockaddr_in asker{};
  socklen_t len = sizeof(asker);
  ASSERT_EQ(recvfrom(server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&asker), &len),
            1);
  ASSERT_EQ(sendto(server.get(), "a", 1, 0, reinterpret_cast<sockaddr*>(&asker), len), 1)
      << strerror(errno);
  pollfd q{client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&q, 1, 5000), 1) << "the store's reply never reached the remote buyer";
  ASSERT_EQ(recv(client.get(), buf, sizeof(buf), 0), 1);

  // The other way: the store asks a server in the buyer's pod.
  const std::string grant = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: buyer-udp, namespace: buyer}
spec: {matches: {ports: [7000]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: store-to-buyer, namespace: buyer}
spec:
  destination: {kind: ServiceAccount, name: buyer, namespace: buyer}
  sources: [{kind: ServiceAccount, name: store, namespace: store}]
  rules: [{kind: UDPRoute, name: buyer-udp}]
)";
  ASSERT_OK(n1_->ApplyConfigFile("reverse.yaml", grant));
  ASSERT_OK(n2_->ApplyConfigFile("reverse.yaml", grant));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd remote_server, n2_->PodSocket(*buyer_, SOCK_DGRAM));
  any.sin_port = htons(7000);
  ASSERT_EQ(bind(remote_server.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd store_client, n1_->PodSocket(*store_, SOCK_DGRAM));
  to.sin_port = htons(7000);
  inet_pton(AF_INET, buyer_->ip.c_str(), &to.sin_addr);
  ASSERT_EQ(sendto(store_client.get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1)
      << strerror(errno);
  pollfd r{remote_server.get(), POLLIN, 0};
  ASSERT_EQ(poll(&r, 1, 5000), 1);
  len = sizeof(asker);
  ASSERT_EQ(
      recvfrom(remote_server.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&asker), &len),
      1);
  // First an unasked datagram to the same client port from another port of
  // the buyer (node 2 is permissive: only node 1's guard can stop it), then
  // the real reply.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd stray, n2_->PodSocket(*buyer_, SOCK_DGRAM));
  const uint64_t denied = N1(SHUNT_CTR_TC_POLICY_DENIED);
  ASSERT_EQ(sendto(stray.get(), "x", 1, 0, reinterpret_cast<sockaddr*>(&asker), len), 1);
  ASSERT_OK(Eventually(
      "node 1 drops the unasked datagram",
      [&]() -> absl::Status {
        if (N1(SHUNT_CTR_TC_POLICY_DENIED) > denied) return absl::OkStatus();
        return absl::UnavailableError("not yet");
      },
      5000));
  ASSERT_EQ(sendto(remote_server.get(), "r", 1, 0, reinterpret_cast<sockaddr*>(&asker), len), 1);
  pollfd t{store_client.get(), POLLIN, 0};
  ASSERT_EQ(poll(&t, 1, 5000), 1) << "the remote server's reply never reached the store";
  ASSERT_EQ(recv(store_client.get(), buf, sizeof(buf), 0), 1);
  EXPECT_EQ(buf[0], 'r');
  EXPECT_EQ(recv(store_client.get(), buf, sizeof(buf), MSG_DONTWAIT), -1);
  EXPECT_GE(N1(SHUNT_CTR_UDP_REPLY_ALLOWED), 2u);
}

TEST_F(CrossNodePolicyTest, AnHttpOnlyGrantOpensNothingToARemoteClient) {
  // The thief gets a grant made only of HTTP routes: no proxy judges them
  // yet, so the store's TC guard drops its SYN like one without a grant.
  ASSERT_OK(n1_->ApplyConfigFile("http.yaml", R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: store-routes, namespace: store}
spec:
  matches:
  - {name: buy, pathRegex: "/buy/.*", methods: [POST]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: thief-http, namespace: store}
spec:
  destination: {kind: ServiceAccount, name: store, namespace: store}
  sources: [{kind: ServiceAccount, name: thief, namespace: thief}]
  rules: [{kind: HTTPRouteGroup, name: store-routes, matches: [buy]}]
)"));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*store_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 8080));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd t, n2_->PodSocket(*thief_, SOCK_STREAM));
  EXPECT_FALSE(ConnectsWithin(t.get(), store_->ip, 8080, 1500)) << "an HTTP-only grant";
  EXPECT_GE(N1(SHUNT_CTR_TC_POLICY_DENIED), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  ASSERT_FALSE(drops.empty());
  EXPECT_EQ(drops[0]["hook"], "tc");
  EXPECT_EQ(drops[0]["type"], "http-only-grant") << drops[0].dump();
}

}  // namespace
}  // namespace shunt::e2e
