// SMI identity policy enforced by the kernel for local clients: connect()
// and sendto() of a meshed pod are refused with EPERM unless a TrafficTarget
// allows them (enforce mode), or only counted and reported (permissive).
// The bookstore demo: bookbuyer may reach bookstore on TCP 8080 and UDP 5353;
// bookthief may not.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mesh_fixture.h"
#include "test/e2e/harness/sanitizers.h"

namespace shunt::e2e {
namespace {

constexpr char kPolicy[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
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
)";

class PolicyTest : public ::testing::Test {
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
    ASSERT_OK(node_->WriteConfigFile("policy.yaml", kPolicy));
  }
  void TearDown() override {
    if (HasFailure() && node_)
      std::fprintf(stderr, "--- agent log ---\n%s\n", node_->AgentLog().c_str());
    node_.reset();
  }
  void Start(const std::string& mode, const std::vector<std::string>& more = {}) {
    std::vector<std::string> flags = {"--mode=" + mode, "--debounce-ms=5"};
    flags.insert(flags.end(), more.begin(), more.end());
    ASSERT_OK(node_->StartAgent(flags));
    ASSERT_OK(node_->WaitMeshed());
  }

  // connect() from `from` to store:port; 0 or the errno.
  int TryConnect(const TestPod& from, uint16_t port, lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(from, SOCK_STREAM);
    if (!s.ok()) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (keep) *keep = std::move(*s);
    return 0;
  }

  // sendto() from `from` to store:port; 0 or the errno.
  int TrySendTo(const TestPod& from, uint16_t port) {
    auto s = node_->PodSocket(from, SOCK_DGRAM);
    if (!s.ok()) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, store_->ip.c_str(), &a.sin_addr);
    if (sendto(s->get(), "q", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 1) return errno;
    return 0;
  }

  lib::UniqueFd Listen(uint16_t port, int type = SOCK_STREAM) {
    auto l = node_->PodSocket(*store_, type);
    EXPECT_TRUE(l.ok());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    EXPECT_EQ(bind(l->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (type == SOCK_STREAM) {
      EXPECT_EQ(listen(l->get(), 64), 0);
    }
    return std::move(*l);
  }

  // TcpActiveOpens of the pod's network namespace (/proc/net/snmp).
  absl::StatusOr<uint64_t> ActiveOpens(const TestPod& pod) {
    auto snmp = Sh("ip netns exec " + pod.netns + " cat /proc/net/snmp");
    if (!snmp.ok()) return snmp.status();
    std::istringstream in(*snmp);
    std::string header, values;
    while (std::getline(in, header)) {
      if (header.rfind("Tcp:", 0) != 0 || !std::getline(in, values)) continue;
      std::istringstream h(header), v(values);
      std::string name, value;
      while (h >> name && v >> value)
        if (name == "ActiveOpens") return std::stoull(value);
    }
    return absl::NotFoundError("no TcpActiveOpens in /proc/net/snmp");
  }

  absl::StatusOr<nlohmann::json> Ctl(const std::string& args) {
    auto out = Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                               node_->api_socket(), " ", args, " -o json"));
    if (!out.ok()) return out.status();
    auto j = nlohmann::json::parse(*out, nullptr, false);
    if (j.is_discarded()) return absl::InternalError("not JSON: " + *out);
    return j;
  }

  uint64_t Counter(int idx) {
    auto c = node_->Counters();
    return c.ok() ? (*c)[idx] : 0;
  }

  // The verdict of `shuntctl policy check` for from -> to:port (or its error).
  std::string Verdict(const std::string& from, const std::string& to, uint16_t port) {
    auto r = Ctl(absl::StrCat("policy check --from ", from, " --to ", to, " --port ", port));
    if (!r.ok()) return std::string(r.status().message());
    return r->value("verdict", "no verdict: " + r->dump());
  }

  std::unique_ptr<TestNode> node_;
  TestPod *buyer_ = nullptr, *thief_ = nullptr, *store_ = nullptr;
};

TEST_F(PolicyTest, EnforceRefusesWhatNoTrafficTargetAllowsBeforeAnyPacket) {
  Start("enforce");
  lib::UniqueFd l = Listen(8080);
  lib::UniqueFd l2 = Listen(9090);
  // The pod's own TCP counters prove no SYN left: a refused connect() is
  // not an active open. (Its veth byte counter is no proof: IPv6 router
  // solicitations and MLD reports cross it at their own pace.)
  ASSERT_OK_AND_ASSIGN(uint64_t opens_before, ActiveOpens(*thief_));
  EXPECT_EQ(TryConnect(*thief_, 8080), EPERM);
  EXPECT_EQ(TryConnect(*buyer_, 9090), EPERM) << "port not granted by the TCPRoute";
  ASSERT_OK_AND_ASSIGN(uint64_t opens_after, ActiveOpens(*thief_));
  EXPECT_EQ(opens_after, opens_before) << "a refused connect sent a SYN";
  lib::UniqueFd conn;
  ASSERT_EQ(TryConnect(*buyer_, 8080, &conn), 0);
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd srv, AcceptOne(l.get()));
  ASSERT_OK(WarmUp(conn.get(), srv.get()));
  ASSERT_OK(WriteAll(conn.get(), "order"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(srv.get(), 5));
  EXPECT_EQ(got, "order");
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_DENIED), 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_ALLOWED), 1u);
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_REDIRECTED), 1u) << "allowed traffic is still short-circuited";

  // Both denials are reported with their source, destination and reason.
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> events, ShuntctlDrops(*node_));
  ASSERT_EQ(events.size(), 2u) << nlohmann::json(events).dump();
  EXPECT_EQ(events[0]["src_ip"], thief_->ip);
  EXPECT_EQ(events[0]["dst_ip"], store_->ip);
  EXPECT_EQ(events[0]["dst_port"], 8080);
  EXPECT_EQ(events[0]["type"], "policy");
  EXPECT_EQ(events[0]["enforced"], true);
  EXPECT_EQ(events[1]["src_ip"], buyer_->ip);
  EXPECT_EQ(events[1]["dst_port"], 9090);
}

TEST_F(PolicyTest, DropsFollowStreamsNewDenialsAsTheyHappen) {
  Start("enforce");
  const std::string out = node_->work_dir() + "/follow.log";
  ASSERT_OK_AND_ASSIGN(pid_t pid, StartFollower(*node_, {"drops", "--follow", "-o", "json"}, out));
  EXPECT_EQ(TryConnect(*thief_, 8080), EPERM);
  absl::StatusOr<std::string> line = WaitFirstLine(out);
  KillAndReap(pid);
  ASSERT_TRUE(line.ok()) << "--follow printed nothing: " << line.status();
  auto e = nlohmann::json::parse(*line);
  EXPECT_EQ(e["src_ip"], thief_->ip);
  EXPECT_EQ(e["dst_port"], 8080);
  EXPECT_EQ(e["enforced"], true);
}

TEST_F(PolicyTest, UdpFollowsUdpRoutesForSendtoAndConnect) {
  Start("enforce");
  lib::UniqueFd u = Listen(5353, SOCK_DGRAM);
  EXPECT_EQ(TrySendTo(*buyer_, 5353), 0);
  char buf[4];
  pollfd p{u.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "the allowed datagram did not arrive";
  EXPECT_EQ(recv(u.get(), buf, sizeof(buf), 0), 1);
  EXPECT_EQ(TrySendTo(*thief_, 5353), EPERM);
  EXPECT_EQ(TrySendTo(*buyer_, 5354), EPERM) << "UDP port not in the UDPRoute";
  EXPECT_EQ(TrySendTo(*buyer_, 8080), EPERM) << "a TCPRoute port does not allow UDP";
  // A connected UDP socket is judged at connect().
  auto s = node_->PodSocket(*thief_, SOCK_DGRAM);
  ASSERT_OK(s);
  EXPECT_FALSE(ConnectTo(s->get(), store_->ip, 5353).ok());
  EXPECT_EQ(errno, EPERM);
}

TEST_F(PolicyTest, PermissiveAllowsEverythingButCountsAndReportsWouldBeDenials) {
  Start("permissive");
  lib::UniqueFd l = Listen(8080);
  EXPECT_EQ(TryConnect(*thief_, 8080), 0);
  EXPECT_EQ(TrySendTo(*thief_, 5353), 0);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_WOULD_DENY), 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_DENIED), 0u);
  ASSERT_OK_AND_ASSIGN(
      nlohmann::json check,
      Ctl(absl::StrCat("policy check --from bookthief/thief --to bookstore/store --port 8080")));
  EXPECT_EQ(check["verdict"], "deny");
  EXPECT_EQ(check["mode"], "permissive");
  EXPECT_NE(check["effect"].get<std::string>().find("would-be denial"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(std::string drops, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                          node_->api_socket(), " drops")));
  EXPECT_NE(drops.find("no (permissive)"), std::string::npos) << drops;
}

TEST_F(PolicyTest, PolicyCheckAndListingsNameTheObjects) {
  Start("enforce");
  ASSERT_OK_AND_ASSIGN(nlohmann::json allow,
                       Ctl("policy check --from bookbuyer/buyer --to bookstore/store --port 8080"));
  EXPECT_EQ(allow["verdict"], "allow");
  EXPECT_EQ(allow["decided_by"], "TrafficTarget bookstore/buyer-to-store");
  ASSERT_OK_AND_ASSIGN(nlohmann::json deny,
                       Ctl("policy check --from bookthief/thief --to bookstore/store --port 8080"));
  EXPECT_EQ(deny["verdict"], "deny");
  EXPECT_EQ(deny["reason"],
            "no TrafficTarget allows bookthief/bookthief -> bookstore/bookstore on tcp/8080");
  ASSERT_OK_AND_ASSIGN(
      nlohmann::json udp,
      Ctl("policy check --from bookbuyer/buyer --to bookstore/store --port 5353 --proto udp"));
  EXPECT_EQ(udp["verdict"], "allow");

  ASSERT_OK_AND_ASSIGN(nlohmann::json pol, Ctl("policy"));
  EXPECT_EQ(pol["mode"], "enforce");
  ASSERT_EQ(pol["entries"].size(), 2u) << pol.dump(2);
  for (const auto& e : pol["entries"]) {
    EXPECT_EQ(e["source"], "bookbuyer/bookbuyer");
    EXPECT_EQ(e["destination"], "bookstore/bookstore");
    EXPECT_EQ(e["traffic_target"], "bookstore/buyer-to-store");
  }
  ASSERT_OK_AND_ASSIGN(nlohmann::json ids, Ctl("identities"));
  std::set<std::string> names;
  for (const auto& i : ids)
    names.insert(i["namespace"].get<std::string>() + "/" + i["service_account"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"bookbuyer/bookbuyer", "bookstore/bookstore",
                                          "bookthief/bookthief"}));
  // Unknown pods are named.
  auto bad = Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(),
                             " policy check --from x/y --to bookstore/store --port 1"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("pod x/y is not in the config"),
            std::string::npos);
}

TEST_F(PolicyTest, EditsOnDiskTakeEffectOnTheNextConnection) {
  Start("enforce");
  lib::UniqueFd l = Listen(8080);
  EXPECT_EQ(TryConnect(*thief_, 8080), EPERM);
  lib::UniqueFd established;
  ASSERT_EQ(TryConnect(*buyer_, 8080, &established), 0);
  ASSERT_OK(AcceptOne(l.get()));
  // Grant the thief too.
  ASSERT_OK(node_->ApplyConfigFile("thief.yaml", R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: thief-to-store, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
  rules: [{kind: TCPRoute, name: store-port}]
)"));
  EXPECT_EQ(Verdict("bookthief/thief", "bookstore/store", 8080), "allow");
  EXPECT_EQ(TryConnect(*thief_, 8080), 0);
  // Revoke the buyer: new connections fail, the established one carries on.
  ASSERT_OK(node_->ApplyConfigFile("policy.yaml", R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: store-port, namespace: bookstore}
spec: {matches: {ports: [8080]}}
)"));
  EXPECT_EQ(Verdict("bookbuyer/buyer", "bookstore/store", 8080), "deny");
  EXPECT_EQ(TryConnect(*buyer_, 8080), EPERM);
  EXPECT_OK(WriteAll(established.get(), "still here"));
}

TEST_F(PolicyTest, APodThatChangesServiceAccountChangesIdentityAtOnce) {
  Start("enforce");
  lib::UniqueFd l = Listen(8080);
  EXPECT_EQ(TryConnect(*thief_, 8080), EPERM);
  // The thief pod is redeployed under the buyer's service account (and
  // namespace): it gets the buyer's identity and its grants.
  thief_->service_account = "bookbuyer";
  thief_->namespace_ = "bookbuyer";
  ASSERT_OK(node_->ApplyManifests());
  EXPECT_EQ(Verdict("bookbuyer/thief", "bookstore/store", 8080), "allow");
  EXPECT_EQ(TryConnect(*thief_, 8080), 0);
  ASSERT_OK_AND_ASSIGN(nlohmann::json ids, Ctl("identities"));
  int buyers = 0;
  for (const auto& i : ids) {
    if (i["service_account"] != "bookbuyer") continue;
    buyers = i["pods"].get<int>();
  }
  EXPECT_EQ(buyers, 2) << ids.dump();
}

TEST_F(PolicyTest, AThousandPolicyUpdatesNeverRefuseAnAllowedPair) {
  Start("enforce");
  lib::UniqueFd l = Listen(8080);
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0};
  std::thread acceptor([&] {
    while (!stop) {
      pollfd p{l.get(), POLLIN, 0};
      if (poll(&p, 1, 50) == 1) lib::UniqueFd(accept(l.get(), nullptr, nullptr));
    }
  });
  std::thread client([&] {
    while (!stop) {
      int e = TryConnect(*buyer_, 8080);
      if (e == 0)
        ++ok;
      else
        ++refused;
    }
  });
  // Each update adds or removes a grant for an unrelated pair; wait for the
  // agent to apply it before the next one.
  const std::string grant = R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: churn, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: sa-N, namespace: churn}]
  rules: [{kind: TCPRoute, name: store-port}]
)";
  int applied = 0;
  const int updates = Repeats(1000);
  for (int i = 0; i < updates; ++i) {
    std::string y = grant;
    y.replace(y.find("sa-N"), 4, "sa-" + std::to_string(i % 7));
    absl::Status st = node_->ApplyConfigFile("churn.yaml", i % 2 ? "" : y);
    EXPECT_TRUE(st.ok()) << "update " << i << ": " << st;
    if (!st.ok()) break;
    ++applied;
  }
  stop = true;
  client.join();
  acceptor.join();
  EXPECT_EQ(applied, updates);
  EXPECT_EQ(refused.load(), 0) << "an allowed connection was refused during a policy update";
  EXPECT_GT(ok.load(), updates);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_DENIED), 0u);
}

// A TrafficTarget made only of HTTP routes, with no proxy's L7 layer to
// judge it (--proxy-l7-port=0; l7_without_mtls_test.cc has the layer on):
// the grant opens nothing at L4 (issue 14 item 6) — a grant for POST /buy
// must not open every port of the destination.
void WriteHttpOnlyGrant(TestNode& node) {
  ASSERT_OK(node.WriteConfigFile("http.yaml", R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: store-routes, namespace: bookstore}
spec:
  matches:
  - {name: buy, pathRegex: "/buy/.*", methods: [POST]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: thief-http, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
  rules: [{kind: HTTPRouteGroup, name: store-routes, matches: [buy]}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: dangling, namespace: bookstore}
spec:
  destination: {kind: ServiceAccount, name: bookstore, namespace: bookstore}
  sources: [{kind: ServiceAccount, name: bookthief, namespace: bookthief}]
  rules: [{kind: TCPRoute, name: no-such-route}]
)"));
}

TEST_F(PolicyTest, HttpOnlyGrantOpensNothingAtL4InEnforceMode) {
  WriteHttpOnlyGrant(*node_);
  Start("enforce", {"--proxy-l7-port=0"});
  lib::UniqueFd l = Listen(8081);
  EXPECT_EQ(TryConnect(*thief_, 8081), EPERM);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_L7_NO_PROXY), 1u);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_DENIED), 1u);
  ASSERT_OK_AND_ASSIGN(nlohmann::json check,
                       Ctl("policy check --from bookthief/thief --to bookstore/store --port 8081"));
  EXPECT_EQ(check["verdict"], "deny-l7");
  EXPECT_NE(check["reason"].get<std::string>().find("opens nothing at L4"), std::string::npos);
  EXPECT_EQ(check["effect"], "connect() fails with EPERM (enforce mode)");
  ASSERT_OK_AND_ASSIGN(std::string drops, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                          node_->api_socket(), " drops -o json")));
  EXPECT_NE(drops.find("http-only-grant"), std::string::npos) << drops;
  ASSERT_OK_AND_ASSIGN(std::string text,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                                       node_->api_socket(), " status")));
  EXPECT_NE(text.find("those grants open nothing at L4"), std::string::npos) << text;
  EXPECT_NE(
      text.find("PROBLEM  TrafficTarget bookstore/dangling: rule TCPRoute 'no-such-route' does not "
                "exist in namespace bookstore; it grants nothing"),
      std::string::npos)
      << text;
}

TEST_F(PolicyTest, HttpOnlyGrantIsAllowedAndReportedInPermissiveMode) {
  WriteHttpOnlyGrant(*node_);
  Start("permissive", {"--proxy-l7-port=0"});
  lib::UniqueFd l = Listen(8081);
  EXPECT_EQ(TryConnect(*thief_, 8081), 0);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_L7_NO_PROXY), 1u);
  EXPECT_EQ(Counter(SHUNT_CTR_POLICY_WOULD_DENY), 1u);
  ASSERT_OK_AND_ASSIGN(nlohmann::json check,
                       Ctl("policy check --from bookthief/thief --to bookstore/store --port 8081"));
  EXPECT_EQ(check["verdict"], "deny-l7");
  EXPECT_EQ(check["effect"], "allowed, counted as a would-be denial (permissive mode)");
}

}  // namespace
}  // namespace shunt::e2e
