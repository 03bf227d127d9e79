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
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

constexpr char kVip[] = "10.96.0.20";

constexpr char kConfig[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: store-port, namespace: bookstore}
spec: {matches: {ports: [8080]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: store-dns, namespace: bookstore}
spec: {matches: {ports: [5353]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: buyer-to-store, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: bookbuyer, namespace: bookbuyer}]
  rules:
  - {kind: TCPRoute, name: store-port}
  - {kind: UDPRoute, name: store-dns}
---
apiVersion: v1
kind: Service
metadata: {name: store, namespace: bookstore, annotations: {balancer.shunt.dev/algorithm: random}}
spec:
  clusterIP: 10.96.0.20
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, targetPort: 5353, protocol: UDP}
)";

// The IPv4-mapped IPv6 address ::ffff:<ip4>, as Java and any dual-stack
// socket spell an IPv4 destination.
sockaddr_in6 Mapped(const std::string& ip4, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ("::ffff:" + ip4).c_str(), &a.sin6_addr);
  return a;
}

std::string Ip6String(const in6_addr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  inet_ntop(AF_INET6, &a, buf, sizeof(buf));
  return buf;
}

class AttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(node_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(
        buyer_, node_->AddPod(
                    {.name = "buyer", .namespace_ = "bookbuyer", .service_account = "bookbuyer"}));
    ASSERT_OK_AND_ASSIGN(
        thief_, node_->AddPod(
                    {.name = "thief", .namespace_ = "bookthief", .service_account = "bookthief"}));
    ASSERT_OK_AND_ASSIGN(
        store_, node_->AddPod(
                    {.name = "store", .namespace_ = "bookstore", .service_account = "bookstore"}));
    std::string slice = absl::StrCat(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: store-1\n"
        "  namespace: bookstore\n  labels: {kubernetes.io/service-name: store}\n"
        "addressType: IPv4\nports:\n- {name: http, port: 8080, protocol: TCP}\n"
        "- {name: dns, port: 5353, protocol: UDP}\nendpoints:\n- addresses: [\"",
        store_->ip, "\"]\n  conditions: {ready: true}\n");
    ASSERT_OK(node_->WriteConfigFile("policy.yaml", absl::StrCat(kConfig, slice)));
  }
  void TearDown() override {
    if (HasFailure() && node_)
      std::fprintf(stderr, "--- agent log ---\n%s\n", node_->AgentLog().c_str());
    node_.reset();
  }
  void Start(const std::string& mode) {
    ASSERT_OK(node_->StartAgent({"--mode=" + mode, "--debounce-ms=5"}));
    ASSERT_OK(node_->WaitMeshed());
  }

  lib::UniqueFd Listen(const TestPod& pod, uint16_t port, int type = SOCK_STREAM) {
    auto l = node_->PodSocket(pod, type);
    EXPECT_TRUE(l.ok());
    if (!l.ok()) return {};
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(bind(l->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(listen(l->get(), 64), 0);
    }
    return std::move(*l);
  }

  // connect() of an AF_INET6 socket of `from` to ::ffff:ip4:port; 0 or the errno.
  int ConnectMapped(const TestPod& from, int type, const std::string& ip4, uint16_t port,
                    lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, type, AF_INET6);
    if (!s.ok()) return -1;
    sockaddr_in6 a = Mapped(ip4, port);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // sendto() of an AF_INET6 UDP socket of `from` to ::ffff:ip4:port; 0 or the errno.
  int SendToMapped(const TestPod& from, const std::string& ip4, uint16_t port, const char* what,
                   lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, SOCK_DGRAM, AF_INET6);
    if (!s.ok()) return -1;
    sockaddr_in6 a = Mapped(ip4, port);
    if (sendto(s->get(), what, strlen(what), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) < 0)
      return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // Connections waiting on `listener` (accepted and closed), without blocking.
  static int DrainAccepts(int listener) {
    int n = 0;
    while (true) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) return n;
      int c = accept(listener, nullptr, nullptr);
      if (c < 0) return n;
      close(c);
      ++n;
    }
  }

  absl::StatusOr<std::string> Drops() {
    return Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(), " drops -o json"));
  }

  std::unique_ptr<TestNode> node_;
  TestPod* buyer_ = nullptr;
  TestPod* thief_ = nullptr;
  TestPod* store_ = nullptr;
};

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
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*store_));
  lib::UniqueFd client;
  ASSERT_EQ(ConnectMapped(*buyer_, SOCK_STREAM, store_->ip, 8080, &client), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd server, AcceptOne(l8080.get()));
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
