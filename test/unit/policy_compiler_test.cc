// The SMI policy compiler (agent/policy/compiler.h): TrafficTargets and their
// routes -> (src, dst, port, proto) -> verdict, as SMI.md section 7 decision 2
// decides. Entries are checked exactly, rendered as readable strings.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/model/object_store.h"
#include "agent/policy/compiler.h"
#include "agent/source/file_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::policy {
namespace {

namespace fs = std::filesystem;
using model::RouteKind;
using model::Subject;
using model::TargetRule;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

// --- Object builders -------------------------------------------------------

model::TrafficTarget Target(const std::string& ns, const std::string& name,
                            const std::string& dest_sa, std::vector<Subject> sources,
                            std::vector<TargetRule> rules) {
  return {.namespace_ = ns,
          .name = name,
          .api_version = "access.smi-spec.io/v1alpha3",
          .destination = {ns, dest_sa},
          .sources = std::move(sources),
          .rules = std::move(rules)};
}

TargetRule TcpRule(const std::string& name) { return {.kind = RouteKind::kTcp, .name = name}; }
TargetRule UdpRule(const std::string& name) { return {.kind = RouteKind::kUdp, .name = name}; }
TargetRule HttpRule(const std::string& name, std::vector<std::string> matches = {}) {
  return {.kind = RouteKind::kHttp, .name = name, .matches = std::move(matches)};
}

model::PortRoute Tcp(const std::string& ns, const std::string& name, std::vector<uint16_t> ports) {
  return {.kind = RouteKind::kTcp, .namespace_ = ns, .name = name, .ports = std::move(ports)};
}
model::PortRoute Udp(const std::string& ns, const std::string& name, std::vector<uint16_t> ports) {
  return {.kind = RouteKind::kUdp, .namespace_ = ns, .name = name, .ports = std::move(ports)};
}
model::HttpRouteGroup Http(const std::string& ns, const std::string& name,
                           std::initializer_list<const char*> match_names) {
  model::HttpRouteGroup g{.namespace_ = ns, .name = name};
  for (const char* m : match_names) g.matches.push_back({.name = m});
  return g;
}

// --- Fixture ---------------------------------------------------------------

class CompilerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  CompiledPolicy Compile(const model::Objects& o) { return policy::Compile(o, ids_, rule_ids_); }

  uint32_t Id(const std::string& ns, const std::string& sa) { return ids_.Get({ns, sa}); }
  uint32_t RuleId(const std::string& ns, const std::string& name) {
    return rule_ids_.Get({ns, name});
  }

  // "ns/sa>ns/sa tcp:8080 ALLOW ns/tt" for every entry; "any" is port 0.
  std::vector<std::string> Render(const CompiledPolicy& p) const {
    auto name = [&](uint32_t id) -> std::string {
      for (const auto& [key, v] : ids_.all())
        if (v == id) return key.first + "/" + key.second;
      return absl::StrCat("#", id);
    };
    std::vector<std::string> out;
    for (const auto& [k, g] : p.entries) {
      const char* verdict = g.verdict == SHUNT_VERDICT_ALLOW ? "ALLOW"
                            : g.verdict == SHUNT_VERDICT_L7  ? "L7"
                                                             : "?";
      auto rule = p.rules.find(g.rule_id);
      out.push_back(absl::StrCat(name(k.src), ">", name(k.dst), " ",
                                 k.proto == kTcp ? "tcp" : "udp", ":",
                                 k.port == 0 ? std::string("any") : absl::StrCat(k.port), " ",
                                 verdict, " ", rule == p.rules.end() ? "?" : rule->second));
    }
    return out;
  }

  static std::vector<std::string> Reasons(const CompiledPolicy& p) {
    std::vector<std::string> out;
    for (const model::Problem& pr : p.problems)
      out.push_back(
          absl::StrCat(pr.ref.kind, " ", pr.ref.namespace_, "/", pr.ref.name, ": ", pr.reason));
    return out;
  }

  // Writes `yaml` to <tmpdir>/<file> and loads the directory through FileSource.
  void Write(const std::string& file, const std::string& yaml) {
    if (dir_.empty()) {
      char tmpl[] = "/tmp/shunt_policy_compiler_test.XXXXXX";
      ASSERT_NE(mkdtemp(tmpl), nullptr);
      dir_ = tmpl;
    }
    std::ofstream out(dir_ + "/" + file, std::ios::trunc);
    out << yaml;
    ASSERT_TRUE(out.good());
  }
  model::Snapshot Load() {
    source::FileSource src(dir_);
    model::ObjectStore store;
    absl::Status synced = src.Sync(store);
    EXPECT_TRUE(synced.ok()) << synced;
    absl::StatusOr<model::Snapshot> s = *store.Publish();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *std::move(s) : model::Snapshot{};
  }

  endpoints::IdentityAllocator ids_;
  endpoints::IdentityAllocator rule_ids_;
  std::string dir_;
};

// --- The bookstore demo, end to end through FileSource ---------------------

constexpr char kBookstore[] = R"(apiVersion: v1
kind: Pod
metadata: {name: bookbuyer-1, namespace: bookbuyer}
spec: {nodeName: node-a, serviceAccountName: bookbuyer}
status: {podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: bookthief-1, namespace: bookthief}
spec: {nodeName: node-a, serviceAccountName: bookthief}
status: {podIP: 10.1.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: bookstore-1, namespace: bookstore}
spec: {nodeName: node-a, serviceAccountName: bookstore}
status: {podIP: 10.1.0.3}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata:
  name: bookstore-tcp
  namespace: bookstore
spec:
  matches:
    ports: [8080]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata:
  name: bookstore
  namespace: bookstore
spec:
  destination:
    kind: ServiceAccount
    name: bookstore
    namespace: bookstore
  rules:
  - kind: TCPRoute
    name: bookstore-tcp
  sources:
  - kind: ServiceAccount
    name: bookbuyer
    namespace: bookbuyer
)";

TEST_F(CompilerTest, BookstoreDemo) {
  Write("bookstore.yaml", kBookstore);
  model::Snapshot snap = Load();
  ASSERT_THAT(snap.problems, IsEmpty());
  ASSERT_THAT(snap.pods, SizeIs(3));
  ASSERT_THAT(snap.traffic_targets, SizeIs(1));
  ASSERT_THAT(snap.tcp_routes, SizeIs(1));

  CompiledPolicy p = Compile(snap);
  EXPECT_THAT(Render(p), ElementsAre("bookbuyer/bookbuyer>bookstore/bookstore tcp:8080 ALLOW "
                                     "bookstore/bookstore"));
  const uint32_t buyer = Id("bookbuyer", "bookbuyer");
  const uint32_t thief = Id("bookthief", "bookthief");
  const uint32_t store = Id("bookstore", "bookstore");
  const uint32_t rule = RuleId("bookstore", "bookstore");
  EXPECT_THAT(p.entries, ElementsAre(Pair(EntryKey{buyer, store, 8080, kTcp},
                                          Grant{SHUNT_VERDICT_ALLOW, rule})));
  EXPECT_THAT(p.rules, ElementsAre(Pair(rule, "bookstore/bookstore")));
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
  EXPECT_THAT(p.identities,
              UnorderedElementsAre(Pair("bookbuyer", "bookbuyer"), Pair("bookstore", "bookstore")));

  EXPECT_EQ(Decide(p, buyer, store, 8080, kTcp).verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(Decide(p, buyer, store, 8080, kTcp).rule_id, rule);
  EXPECT_EQ(Decide(p, buyer, store, 8081, kTcp).verdict, 0);  // another port
  EXPECT_EQ(Decide(p, buyer, store, 8080, kUdp).verdict, 0);  // another protocol
  EXPECT_EQ(Decide(p, store, buyer, 8080, kTcp).verdict, 0);  // the reverse direction
  EXPECT_EQ(Decide(p, thief, store, 8080, kTcp).verdict, 0);  // bookthief has no grant
}

TEST_F(CompilerTest, SpecL7ExampleThroughFileSource) {
  // SMI.md 5.1: an HTTPRouteGroup-only TrafficTarget; sources in another namespace.
  Write("store.yaml", R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: store-routes, namespace: store}
spec:
  matches:
  - {name: purchase, pathRegex: "/buy/.*", methods: ["POST"]}
  - name: catalog
    pathRegex: "/books"
    methods: ["GET", "HEAD"]
    headers: [{x-client: "buyer-.*"}]
  - {name: admin, pathRegex: "/admin.*", methods: ["*"]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: buyer-to-store, namespace: store}
spec:
  destination: {kind: ServiceAccount, name: store, namespace: store}
  rules:
  - kind: HTTPRouteGroup
    name: store-routes
    matches: ["purchase", "catalog"]
  sources:
  - {kind: ServiceAccount, name: buyer, namespace: shoppers}
)");
  model::Snapshot snap = Load();
  ASSERT_THAT(snap.problems, IsEmpty());
  CompiledPolicy p = Compile(snap);
  EXPECT_THAT(Render(p), ElementsAre("shoppers/buyer>store/store tcp:any L7 store/buyer-to-store"));
  EXPECT_EQ(p.l7_targets, 1);
  EXPECT_THAT(p.problems, IsEmpty());
}

// --- L4 grants ---------------------------------------------------------------

TEST_F(CompilerTest, EmptyInputCompilesToNothing) {
  CompiledPolicy p = Compile({});
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(p.rules, IsEmpty());
  EXPECT_THAT(p.problems, IsEmpty());
  EXPECT_THAT(p.identities, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
}

TEST_F(CompilerTest, TcpRouteWithoutPortsGrantsAnyPort) {
  model::Objects o;
  o.traffic_targets = {Target("db", "tt", "pg", {{"app", "api"}}, {TcpRule("all")})};
  o.tcp_routes = {Tcp("db", "all", {})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), ElementsAre("app/api>db/pg tcp:any ALLOW db/tt"));
  const Decision d = Decide(p, Id("app", "api"), Id("db", "pg"), 5432, kTcp);
  EXPECT_EQ(d.verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(d.matched_port, 0);
  EXPECT_EQ(Decide(p, Id("app", "api"), Id("db", "pg"), 5432, kUdp).verdict, 0);
}

TEST_F(CompilerTest, AnyPortRouteAbsorbsSpecificPortsOfTheSameTarget) {
  model::Objects o;
  o.traffic_targets = {
      Target("db", "tt", "pg", {{"app", "api"}}, {TcpRule("some"), TcpRule("all")})};
  o.tcp_routes = {Tcp("db", "some", {5432, 6432}), Tcp("db", "all", {})};
  EXPECT_THAT(Render(Compile(o)), ElementsAre("app/api>db/pg tcp:any ALLOW db/tt"));
}

TEST_F(CompilerTest, PortsOfSeveralRoutesAreUnited) {
  model::Objects o;
  o.traffic_targets = {Target("db", "tt", "pg", {{"app", "api"}}, {TcpRule("a"), TcpRule("b")})};
  o.tcp_routes = {Tcp("db", "a", {5432, 6432}), Tcp("db", "b", {6432, 9187})};
  EXPECT_THAT(Render(Compile(o)), UnorderedElementsAre("app/api>db/pg tcp:5432 ALLOW db/tt",
                                                       "app/api>db/pg tcp:6432 ALLOW db/tt",
                                                       "app/api>db/pg tcp:9187 ALLOW db/tt"));
}

TEST_F(CompilerTest, UdpRouteGrantsUdpOnlyAndTcpRouteTcpOnly) {
  // The spec's example: UDP to 8300 is blocked while TCP to 8300 is allowed.
  model::Objects o;
  o.traffic_targets = {Target("consul", "server", "consul", {{"consul", "agent"}},
                              {TcpRule("tcp"), UdpRule("udp")})};
  o.tcp_routes = {Tcp("consul", "tcp", {8300, 8301, 8302})};
  o.udp_routes = {Udp("consul", "udp", {8301, 8302})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p),
              UnorderedElementsAre("consul/agent>consul/consul tcp:8300 ALLOW consul/server",
                                   "consul/agent>consul/consul tcp:8301 ALLOW consul/server",
                                   "consul/agent>consul/consul tcp:8302 ALLOW consul/server",
                                   "consul/agent>consul/consul udp:8301 ALLOW consul/server",
                                   "consul/agent>consul/consul udp:8302 ALLOW consul/server"));
  const uint32_t a = Id("consul", "agent"), c = Id("consul", "consul");
  EXPECT_EQ(Decide(p, a, c, 8300, kTcp).verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(Decide(p, a, c, 8300, kUdp).verdict, 0);
  EXPECT_EQ(Decide(p, a, c, 8301, kUdp).verdict, SHUNT_VERDICT_ALLOW);
}

TEST_F(CompilerTest, UdpRouteWithoutPortsGrantsAnyUdpPortOnly) {
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "dns", {{"n", "c"}}, {UdpRule("udp")})};
  o.udp_routes = {Udp("n", "udp", {})};
  EXPECT_THAT(Render(Compile(o)), ElementsAre("n/c>n/dns udp:any ALLOW n/tt"));
}

TEST_F(CompilerTest, SeveralTrafficTargetsAddUpWithoutCrossPollination) {
  // The spec's example, at L4: prometheus may only scrape, website and
  // payments may only use the API; neither inherits the other's rule.
  model::Objects o;
  o.traffic_targets = {
      Target("shop", "metrics", "api", {{"monitoring", "prometheus"}}, {TcpRule("metrics-port")}),
      Target("shop", "api-users", "api", {{"shop", "website"}, {"shop", "payments"}},
             {TcpRule("api-port")})};
  o.tcp_routes = {Tcp("shop", "metrics-port", {9090}), Tcp("shop", "api-port", {8080})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p),
              UnorderedElementsAre("monitoring/prometheus>shop/api tcp:9090 ALLOW shop/metrics",
                                   "shop/website>shop/api tcp:8080 ALLOW shop/api-users",
                                   "shop/payments>shop/api tcp:8080 ALLOW shop/api-users"));
  EXPECT_THAT(p.rules, SizeIs(2));
  EXPECT_EQ(Decide(p, Id("monitoring", "prometheus"), Id("shop", "api"), 8080, kTcp).verdict, 0);
  EXPECT_EQ(Decide(p, Id("shop", "website"), Id("shop", "api"), 9090, kTcp).verdict, 0);
}

TEST_F(CompilerTest, SourcesFromSeveralNamespacesAreDistinctIdentities) {
  model::Objects o;
  o.traffic_targets = {Target(
      "db", "tt", "pg", {{"a", "client"}, {"b", "client"}, {"db", "client"}}, {TcpRule("pg")})};
  o.tcp_routes = {Tcp("db", "pg", {5432})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), UnorderedElementsAre("a/client>db/pg tcp:5432 ALLOW db/tt",
                                              "b/client>db/pg tcp:5432 ALLOW db/tt",
                                              "db/client>db/pg tcp:5432 ALLOW db/tt"));
  EXPECT_NE(Id("a", "client"), Id("b", "client"));
  EXPECT_EQ(Decide(p, Id("c", "client"), Id("db", "pg"), 5432, kTcp).verdict, 0);
  EXPECT_THAT(p.identities, UnorderedElementsAre(Pair("a", "client"), Pair("b", "client"),
                                                 Pair("db", "client"), Pair("db", "pg")));
}

TEST_F(CompilerTest, TwoTargetsForTheSameGrantKeepTheFirstByName) {
  // Deterministic whatever the input order: sorted by namespace/name.
  for (bool reversed : {false, true}) {
    model::Objects o;
    o.traffic_targets = {Target("n", "alpha", "s", {{"n", "c"}}, {TcpRule("r")}),
                         Target("n", "beta", "s", {{"n", "c"}}, {TcpRule("r")})};
    if (reversed) std::reverse(o.traffic_targets.begin(), o.traffic_targets.end());
    o.tcp_routes = {Tcp("n", "r", {80})};
    CompiledPolicy p = Compile(o);
    EXPECT_THAT(Render(p), ElementsAre("n/c>n/s tcp:80 ALLOW n/alpha")) << reversed;
    EXPECT_THAT(p.rules, SizeIs(2));
  }
}

// --- Dangling references -----------------------------------------------------

TEST_F(CompilerTest, MissingRouteObjectGrantsNothingAndIsReported) {
  model::Objects o;
  o.traffic_targets = {
      Target("db", "api-to-pg", "pg", {{"app", "api"}},
             {TcpRule("absent-tcp"), UdpRule("absent-udp"), HttpRule("absent-http")})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
  EXPECT_THAT(
      Reasons(p),
      ElementsAre("TrafficTarget db/api-to-pg: rule TCPRoute 'absent-tcp' does not exist in "
                  "namespace db; it grants nothing",
                  "TrafficTarget db/api-to-pg: rule UDPRoute 'absent-udp' does not exist in "
                  "namespace db; it grants nothing",
                  "TrafficTarget db/api-to-pg: rule HTTPRouteGroup 'absent-http' does not "
                  "exist in namespace db; it grants nothing"));
  // The rule is still registered, so the CLI can name it.
  EXPECT_THAT(p.rules, ElementsAre(Pair(RuleId("db", "api-to-pg"), "db/api-to-pg")));
}

TEST_F(CompilerTest, RoutesResolveOnlyInTheTargetsNamespace) {
  model::Objects o;
  o.traffic_targets = {
      Target("db", "tt", "pg", {{"app", "api"}}, {TcpRule("pg"), HttpRule("web")})};
  o.tcp_routes = {Tcp("app", "pg", {5432})};  // same name, wrong namespace
  o.http_route_groups = {Http("app", "web", {"all"})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(Reasons(p),
              ElementsAre(HasSubstr("rule TCPRoute 'pg' does not exist in namespace db"),
                          HasSubstr("rule HTTPRouteGroup 'web' does not exist in namespace db")));
}

TEST_F(CompilerTest, RouteKindMustMatchTheRule) {
  // A TCPRoute named like the rule does not satisfy a UDPRoute rule.
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "s", {{"n", "c"}}, {UdpRule("r")})};
  o.tcp_routes = {Tcp("n", "r", {53})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("rule UDPRoute 'r' does not exist")));
}

TEST_F(CompilerTest, MissingRouteDoesNotCancelTheTargetsOtherRules) {
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "s", {{"n", "c"}}, {TcpRule("gone"), TcpRule("here")})};
  o.tcp_routes = {Tcp("n", "here", {443})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), ElementsAre("n/c>n/s tcp:443 ALLOW n/tt"));
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("rule TCPRoute 'gone' does not exist")));
}

TEST_F(CompilerTest, MissingHttpMatchNameIsReported) {
  model::Objects o;
  o.traffic_targets = {Target("store", "tt", "store", {{"shoppers", "buyer"}},
                              {HttpRule("routes", {"purchase", "refund"})})};
  o.http_route_groups = {Http("store", "routes", {"purchase", "catalog"})};
  CompiledPolicy p = Compile(o);
  // The existing match still grants.
  EXPECT_THAT(Render(p), ElementsAre("shoppers/buyer>store/store tcp:any L7 store/tt"));
  EXPECT_THAT(Reasons(p), ElementsAre("TrafficTarget store/tt: rule HTTPRouteGroup 'routes' has no "
                                      "match named 'refund'; it grants nothing"));
}

TEST_F(CompilerTest, OnlyMissingHttpMatchNamesGrantNothing) {
  model::Objects o;
  o.traffic_targets = {
      Target("store", "tt", "store", {{"shoppers", "buyer"}}, {HttpRule("routes", {"nope"})})};
  o.http_route_groups = {Http("store", "routes", {"purchase"})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("has no match named 'nope'")));
}

// --- HTTP (L7) -----------------------------------------------------------------

TEST_F(CompilerTest, HttpRouteGroupOnlyTargetIsL7OnAnyPort) {
  model::Objects o;
  o.traffic_targets = {
      Target("store", "tt", "store", {{"shoppers", "buyer"}}, {HttpRule("routes")})};
  o.http_route_groups = {Http("store", "routes", {"purchase"})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries,
              ElementsAre(Pair(EntryKey{Id("shoppers", "buyer"), Id("store", "store"), 0, kTcp},
                               Grant{SHUNT_VERDICT_L7, RuleId("store", "tt")})));
  EXPECT_EQ(p.l7_targets, 1);
  const Decision d = Decide(p, Id("shoppers", "buyer"), Id("store", "store"), 8080, kTcp);
  EXPECT_EQ(d.verdict, SHUNT_VERDICT_L7);
  EXPECT_EQ(d.matched_port, 0);
  EXPECT_EQ(Decide(p, Id("shoppers", "buyer"), Id("store", "store"), 8080, kUdp).verdict, 0);
}

TEST_F(CompilerTest, HttpAndTcpRouteInOneTargetIsL7OnTheTcpRoutePortsOnly) {
  // AND, as OSM does: no L4 allow, and no L7 on other ports.
  model::Objects o;
  o.traffic_targets = {Target("store", "tt", "store", {{"shoppers", "buyer"}},
                              {HttpRule("routes"), TcpRule("web")})};
  o.http_route_groups = {Http("store", "routes", {"purchase"})};
  o.tcp_routes = {Tcp("store", "web", {8080, 8443})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), UnorderedElementsAre("shoppers/buyer>store/store tcp:8080 L7 store/tt",
                                              "shoppers/buyer>store/store tcp:8443 L7 store/tt"));
  EXPECT_EQ(p.l7_targets, 1);
  EXPECT_EQ(Decide(p, Id("shoppers", "buyer"), Id("store", "store"), 9090, kTcp).verdict, 0);
}

TEST_F(CompilerTest, HttpAndAnyPortTcpRouteIsL7OnAnyPort) {
  model::Objects o;
  o.traffic_targets = {Target("s", "tt", "srv", {{"c", "cli"}}, {TcpRule("any"), HttpRule("g")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.tcp_routes = {Tcp("s", "any", {})};
  EXPECT_THAT(Render(Compile(o)), ElementsAre("c/cli>s/srv tcp:any L7 s/tt"));
}

TEST_F(CompilerTest, HttpAndUdpRouteInOneTargetGrantUdpAndL7) {
  // UDPRoutes still grant UDP; without a TCPRoute the HTTP grant is on any port.
  model::Objects o;
  o.traffic_targets = {Target("s", "tt", "srv", {{"c", "cli"}}, {HttpRule("g"), UdpRule("dns")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.udp_routes = {Udp("s", "dns", {53})};
  EXPECT_THAT(Render(Compile(o)),
              UnorderedElementsAre("c/cli>s/srv tcp:any L7 s/tt", "c/cli>s/srv udp:53 ALLOW s/tt"));
}

TEST_F(CompilerTest, HttpWithDanglingGroupAndATcpRouteGrantsNothing) {
  // Fail closed: the TCPRoute only narrows the (missing) HTTP grant; it must
  // not turn into an L4 allow.
  model::Objects o;
  o.traffic_targets = {
      Target("s", "tt", "srv", {{"c", "cli"}}, {HttpRule("gone"), TcpRule("web")})};
  o.tcp_routes = {Tcp("s", "web", {8080})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("rule HTTPRouteGroup 'gone' does not exist")));
}

TEST_F(CompilerTest, HttpWithDanglingTcpRouteGrantsNothing) {
  // Fail closed: a missing TCPRoute must not widen the HTTP grant to any port.
  model::Objects o;
  o.traffic_targets = {Target("s", "tt", "srv", {{"c", "cli"}}, {HttpRule("g"), TcpRule("gone")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre(HasSubstr("rule TCPRoute 'gone' does not exist")));
}

TEST_F(CompilerTest, L4AllowFromAnotherTargetBeatsL7OnTheSamePort) {
  // Whichever target sorts first, the L4 allow wins and carries its rule id.
  for (const char* l4_name : {"a-tcp", "z-tcp"}) {
    model::Objects o;
    o.traffic_targets = {
        Target("s", "m-http", "srv", {{"c", "cli"}}, {HttpRule("g"), TcpRule("web")}),
        Target("s", l4_name, "srv", {{"c", "cli"}}, {TcpRule("web")})};
    o.http_route_groups = {Http("s", "g", {"m"})};
    o.tcp_routes = {Tcp("s", "web", {8080})};
    CompiledPolicy p = Compile(o);
    EXPECT_THAT(Render(p), ElementsAre(absl::StrCat("c/cli>s/srv tcp:8080 ALLOW s/", l4_name)));
    EXPECT_EQ(p.l7_targets, 1);
  }
}

TEST_F(CompilerTest, L4AllowOnAnyPortBeatsL7OnASpecificPort) {
  for (const char* l4_name : {"a-tcp", "z-tcp"}) {
    model::Objects o;
    o.traffic_targets = {
        Target("s", "m-http", "srv", {{"c", "cli"}}, {HttpRule("g"), TcpRule("web")}),
        Target("s", l4_name, "srv", {{"c", "cli"}}, {TcpRule("any")})};
    o.http_route_groups = {Http("s", "g", {"m"})};
    o.tcp_routes = {Tcp("s", "web", {8080}), Tcp("s", "any", {})};
    CompiledPolicy p = Compile(o);
    const std::string allow = absl::StrCat("ALLOW s/", l4_name);
    EXPECT_THAT(Render(p), UnorderedElementsAre("c/cli>s/srv tcp:any " + allow,
                                                "c/cli>s/srv tcp:8080 " + allow));
    const Decision d = Decide(p, Id("c", "cli"), Id("s", "srv"), 8080, kTcp);
    EXPECT_EQ(d.verdict, SHUNT_VERDICT_ALLOW);
    EXPECT_EQ(d.rule_id, RuleId("s", l4_name));
  }
}

TEST_F(CompilerTest, L4AllowOnAnyPortBeatsL7OnAnyPort) {
  model::Objects o;
  o.traffic_targets = {Target("s", "a-http", "srv", {{"c", "cli"}}, {HttpRule("g")}),
                       Target("s", "b-tcp", "srv", {{"c", "cli"}}, {TcpRule("any")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.tcp_routes = {Tcp("s", "any", {})};
  EXPECT_THAT(Render(Compile(o)), ElementsAre("c/cli>s/srv tcp:any ALLOW s/b-tcp"));
}

TEST_F(CompilerTest, L4AllowOnOnePortLeavesL7OnTheOthers) {
  model::Objects o;
  o.traffic_targets = {Target("s", "a-http", "srv", {{"c", "cli"}}, {HttpRule("g")}),
                       Target("s", "b-tcp", "srv", {{"c", "cli"}}, {TcpRule("pg")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.tcp_routes = {Tcp("s", "pg", {5432})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), UnorderedElementsAre("c/cli>s/srv tcp:any L7 s/a-http",
                                              "c/cli>s/srv tcp:5432 ALLOW s/b-tcp"));
  EXPECT_EQ(Decide(p, Id("c", "cli"), Id("s", "srv"), 5432, kTcp).verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(Decide(p, Id("c", "cli"), Id("s", "srv"), 80, kTcp).verdict, SHUNT_VERDICT_L7);
}

TEST_F(CompilerTest, L4AllowForOneSourceDoesNotLiftL7ForAnother) {
  model::Objects o;
  o.traffic_targets = {
      Target("s", "http", "srv", {{"c", "web"}, {"c", "ops"}}, {HttpRule("g"), TcpRule("web")}),
      Target("s", "ops-tcp", "srv", {{"c", "ops"}}, {TcpRule("any")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.tcp_routes = {Tcp("s", "web", {8080}), Tcp("s", "any", {})};
  EXPECT_THAT(Render(Compile(o)), UnorderedElementsAre("c/web>s/srv tcp:8080 L7 s/http",
                                                       "c/ops>s/srv tcp:8080 ALLOW s/ops-tcp",
                                                       "c/ops>s/srv tcp:any ALLOW s/ops-tcp"));
}

TEST_F(CompilerTest, L7TargetsCountsTargetsThatGrantHttp) {
  model::Objects o;
  o.traffic_targets = {Target("s", "h1", "srv", {{"c", "a"}}, {HttpRule("g")}),
                       Target("s", "h2", "srv", {{"c", "b"}}, {HttpRule("g", {"m"})}),
                       Target("s", "l4", "srv", {{"c", "c"}}, {TcpRule("t")}),
                       Target("s", "dangling", "srv", {{"c", "d"}}, {HttpRule("gone")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  o.tcp_routes = {Tcp("s", "t", {1})};
  EXPECT_EQ(Compile(o).l7_targets, 2);
}

// --- v1alpha2 destination.port ----------------------------------------------

model::TrafficTarget V1alpha2(model::TrafficTarget t, uint16_t port) {
  t.api_version = "access.smi-spec.io/v1alpha2";
  t.destination_port = port;
  return t;
}

TEST_F(CompilerTest, V1alpha2DestinationPortNarrowsTcpRoutePorts) {
  model::Objects o;
  o.traffic_targets = {V1alpha2(Target("n", "some", "s", {{"n", "a"}}, {TcpRule("ports")}), 8080),
                       V1alpha2(Target("n", "any", "s", {{"n", "b"}}, {TcpRule("all")}), 8080)};
  o.tcp_routes = {Tcp("n", "ports", {8080, 9090}), Tcp("n", "all", {})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(Render(p), UnorderedElementsAre("n/a>n/s tcp:8080 ALLOW n/some",
                                              "n/b>n/s tcp:8080 ALLOW n/any"));
  EXPECT_THAT(p.problems, IsEmpty());
}

TEST_F(CompilerTest, V1alpha2DestinationPortOutsideTheTcpRouteGrantsNothing) {
  model::Objects o;
  o.traffic_targets = {V1alpha2(Target("n", "tt", "s", {{"n", "a"}}, {TcpRule("ports")}), 8080)};
  o.tcp_routes = {Tcp("n", "ports", {9090})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre("TrafficTarget n/tt: destination.port 8080 is not among its "
                                      "TCPRoute ports; they grant nothing"));
}

TEST_F(CompilerTest, V1alpha2DestinationPortNarrowsHttpAndUdp) {
  model::Objects o;
  o.traffic_targets = {
      V1alpha2(Target("n", "http", "s", {{"n", "a"}}, {HttpRule("g")}), 8080),
      V1alpha2(Target("n", "http-tcp", "s", {{"n", "b"}}, {HttpRule("g"), TcpRule("all")}), 8443),
      V1alpha2(Target("n", "udp", "s", {{"n", "c"}}, {UdpRule("dns")}), 53)};
  o.http_route_groups = {Http("n", "g", {"m"})};
  o.tcp_routes = {Tcp("n", "all", {})};
  o.udp_routes = {Udp("n", "dns", {53, 5353})};
  EXPECT_THAT(Render(Compile(o)),
              UnorderedElementsAre("n/a>n/s tcp:8080 L7 n/http", "n/b>n/s tcp:8443 L7 n/http-tcp",
                                   "n/c>n/s udp:53 ALLOW n/udp"));
}

// Bug: the compiler reports a v1alpha2 destination.port that empties the
// TCPRoute ports (see the test above) but not one that empties the UDPRoute
// ports; CompiledPolicy::problems promises "empty grants" are reported, and
// this TrafficTarget silently grants nothing (compiler.cc, the narrowing
// block only checks `has_tcp && tcp_ports.empty()`).
TEST_F(CompilerTest, V1alpha2DestinationPortOutsideTheUdpRouteIsReported) {
  model::Objects o;
  o.traffic_targets = {V1alpha2(Target("n", "tt", "s", {{"n", "a"}}, {UdpRule("dns")}), 8080)};
  o.udp_routes = {Udp("n", "dns", {53})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(p.problems, SizeIs(1));
}

// Bug (misleading report): with a v1alpha2 destination.port and a TCPRoute
// rule whose object is missing, the compiler reports the dangling reference
// and then also "destination.port 8080 is not among its TCPRoute ports",
// though the route has no ports to compare with (compiler.cc: `has_tcp` is set
// before the route is looked up, and the narrowing check runs on the empty set).
TEST_F(CompilerTest, V1alpha2MissingTcpRouteIsReportedOnce) {
  model::Objects o;
  o.traffic_targets = {V1alpha2(Target("n", "tt", "s", {{"n", "a"}}, {TcpRule("gone")}), 8080)};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(Reasons(p), ElementsAre("TrafficTarget n/tt: rule TCPRoute 'gone' does not exist in "
                                      "namespace n; it grants nothing"));
}

// Bug: l7_targets counts a TrafficTarget whose HTTP grant produced no entry
// at all (here its TCPRoute is missing, so the AND leaves no port). The agent
// log and `shuntctl status` then warn that HTTP rules of 1 TrafficTarget are
// not enforced and "those pairs are allowed at L4", while nothing is allowed
// (compiler.cc: `if (has_http && http_grants) ++p.l7_targets;` ignores
// whether http_ports was empty).
TEST_F(CompilerTest, L7TargetsCountsOnlyTargetsWithL7Entries) {
  model::Objects o;
  o.traffic_targets = {Target("s", "tt", "srv", {{"c", "cli"}}, {HttpRule("g"), TcpRule("gone")})};
  o.http_route_groups = {Http("s", "g", {"m"})};
  CompiledPolicy p = Compile(o);
  ASSERT_THAT(p.entries, IsEmpty());
  EXPECT_EQ(p.l7_targets, 0);
}

// Compiler problems carry an ObjectRef without a file; it must still print
// cleanly in the agent log and `shuntctl status` (no leading space).
TEST_F(CompilerTest, ProblemRefPrintsWithoutAFile) {
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "s", {{"n", "c"}}, {TcpRule("gone")})};
  CompiledPolicy p = Compile(o);
  ASSERT_THAT(p.problems, SizeIs(1));
  EXPECT_EQ(p.problems[0].ref.ToString(), "TrafficTarget n/tt");
}

// --- Through FileSource: rejected objects grant nothing ---------------------

constexpr char kTcpRoute[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: web, namespace: s}
spec: {matches: {ports: [8080]}}
)";

std::string TargetYaml(const std::string& name, const std::string& source_sa,
                       const std::string& rules = "[{kind: TCPRoute, name: web}]") {
  return absl::StrCat(
      "apiVersion: access.smi-spec.io/v1alpha3\nkind: TrafficTarget\n", "metadata: {name: ", name,
      ", namespace: s}\nspec:\n",
      "  destination: {kind: ServiceAccount, name: srv, namespace: s}\n",
      "  sources: ", source_sa.empty() ? "[]" : "[{kind: ServiceAccount, name: " + source_sa + "}]",
      "\n  rules: ", rules, "\n");
}

TEST_F(CompilerTest, DuplicateObjectsOnlyTheFirstCounts) {
  Write("10-a.yaml", std::string(kTcpRoute) + "---\n" + TargetYaml("tt", "first"));
  // Same TrafficTarget and TCPRoute names with other contents, in a later file.
  Write("20-b.yaml", TargetYaml("tt", "second") + R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: web, namespace: s}
spec: {matches: {ports: [22]}}
)");
  model::Snapshot snap = Load();
  ASSERT_THAT(snap.traffic_targets, SizeIs(1));
  ASSERT_THAT(snap.tcp_routes, SizeIs(1));
  std::vector<std::string> problems;
  for (const auto& pr : snap.problems) problems.push_back(pr.ToString());
  EXPECT_THAT(
      problems,
      ElementsAre("20-b.yaml:1 TrafficTarget s/tt: duplicate: TrafficTarget s/tt is already "
                  "defined in 10-a.yaml; this copy is ignored",
                  "20-b.yaml:9 TCPRoute s/web: duplicate: TCPRoute s/web is already defined "
                  "in 10-a.yaml; this copy is ignored"));
  EXPECT_THAT(Render(Compile(snap)), ElementsAre("s/first>s/srv tcp:8080 ALLOW s/tt"));
}

TEST_F(CompilerTest, UnknownRouteKindRejectsTheWholeTarget) {
  Write("a.yaml",
        std::string(kTcpRoute) + "---\n" +
            TargetYaml("tt", "cli", "[{kind: TCPRoute, name: web}, {kind: GRPCRoute, name: x}]"));
  model::Snapshot snap = Load();
  EXPECT_THAT(snap.traffic_targets, IsEmpty());
  ASSERT_THAT(snap.problems, SizeIs(1));
  EXPECT_EQ(snap.problems[0].ToString(),
            "a.yaml:6 TrafficTarget s/tt: spec.rules[1].kind unknown route kind 'GRPCRoute' "
            "(expected TCPRoute, UDPRoute or HTTPRouteGroup)");
  CompiledPolicy p = Compile(snap);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(p.rules, IsEmpty());
}

TEST_F(CompilerTest, EmptySourcesRejectTheTarget) {
  Write("a.yaml", std::string(kTcpRoute) + "---\n" + TargetYaml("tt", ""));
  model::Snapshot snap = Load();
  EXPECT_THAT(snap.traffic_targets, IsEmpty());
  ASSERT_THAT(snap.problems, SizeIs(1));
  EXPECT_EQ(snap.problems[0].reason, "spec.sources must list at least one source");
  EXPECT_THAT(Compile(snap).entries, IsEmpty());
}

// --- Identities and rule ids -------------------------------------------------

TEST_F(CompilerTest, RuleIdsAreStableAcrossRecompiles) {
  model::Objects o;
  o.traffic_targets = {Target("n", "m", "s", {{"n", "c"}}, {TcpRule("r")})};
  o.tcp_routes = {Tcp("n", "r", {80})};
  CompiledPolicy first = Compile(o);
  ASSERT_THAT(first.rules, SizeIs(1));
  const uint32_t m_id = first.rules.begin()->first;
  EXPECT_EQ(m_id, endpoints::kFirstIdentity);  // the allocator's first number

  // Same input: identical output.
  CompiledPolicy again = Compile(o);
  EXPECT_EQ(again.entries, first.entries);
  EXPECT_EQ(again.rules, first.rules);

  // A new target that sorts first does not renumber the old one.
  o.traffic_targets.push_back(Target("n", "a", "s", {{"n", "d"}}, {TcpRule("r")}));
  CompiledPolicy more = Compile(o);
  EXPECT_THAT(more.rules, UnorderedElementsAre(Pair(m_id, "n/m"), Pair(RuleId("n", "a"), "n/a")));
  EXPECT_NE(RuleId("n", "a"), m_id);
  EXPECT_EQ(more.entries.at({Id("n", "c"), Id("n", "s"), 80, kTcp}),
            (Grant{SHUNT_VERDICT_ALLOW, m_id}));
}

TEST_F(CompilerTest, IdentitiesAreAllocatedForServiceAccountsNoPodUses) {
  // The allocator knows nothing yet (no pods): the compiler allocates.
  ids_.Seed({"n", "s"}, 300);  // a pod's identity from pinned state keeps its number
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "s", {{"n", "ghost"}, {"far", "ghost"}}, {TcpRule("r")})};
  o.tcp_routes = {Tcp("n", "r", {80})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.identities,
              UnorderedElementsAre(Pair("n", "s"), Pair("n", "ghost"), Pair("far", "ghost")));
  EXPECT_EQ(ids_.size(), 3u);
  EXPECT_EQ(ids_.all().at({"n", "s"}), 300u);
  EXPECT_EQ(p.entries.count({ids_.all().at({"n", "ghost"}), 300, 80, kTcp}), 1u);
  EXPECT_EQ(p.entries.count({ids_.all().at({"far", "ghost"}), 300, 80, kTcp}), 1u);
  // Rule ids come from their own allocator, not the identity one.
  EXPECT_EQ(rule_ids_.size(), 1u);
}

TEST_F(CompilerTest, IdentitiesIncludeThoseOfTargetsThatGrantNothing) {
  // A dangling target still names its SAs, so their numbers stay reserved.
  model::Objects o;
  o.traffic_targets = {Target("n", "tt", "s", {{"n", "c"}}, {TcpRule("gone")})};
  CompiledPolicy p = Compile(o);
  EXPECT_THAT(p.entries, IsEmpty());
  EXPECT_THAT(p.identities, UnorderedElementsAre(Pair("n", "s"), Pair("n", "c")));
}

// --- Decide() ------------------------------------------------------------------

TEST(DecideTest, ExactPortFirstThenAnyPortElseDeny) {
  CompiledPolicy p;
  p.entries[{300, 400, 0, kTcp}] = {SHUNT_VERDICT_L7, 7};
  p.entries[{300, 400, 8080, kTcp}] = {SHUNT_VERDICT_ALLOW, 9};
  p.entries[{301, 400, 53, kUdp}] = {SHUNT_VERDICT_ALLOW, 11};

  Decision d = Decide(p, 300, 400, 8080, kTcp);
  EXPECT_EQ(d.verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(d.rule_id, 9u);
  EXPECT_EQ(d.matched_port, 8080);

  d = Decide(p, 300, 400, 80, kTcp);
  EXPECT_EQ(d.verdict, SHUNT_VERDICT_L7);
  EXPECT_EQ(d.rule_id, 7u);
  EXPECT_EQ(d.matched_port, 0);

  // The any-port entry does not cover another protocol, source or destination.
  for (const Decision& deny : {Decide(p, 300, 400, 8080, kUdp), Decide(p, 301, 400, 8080, kTcp),
                               Decide(p, 300, 401, 8080, kTcp), Decide(p, 400, 300, 8080, kTcp)}) {
    EXPECT_EQ(deny.verdict, 0);
    EXPECT_EQ(deny.rule_id, 0u);
    EXPECT_EQ(deny.matched_port, 0);
  }

  // No any-port entry: only the exact port.
  EXPECT_EQ(Decide(p, 301, 400, 53, kUdp).verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(Decide(p, 301, 400, 54, kUdp).verdict, 0);
}

TEST(DecideTest, EmptyPolicyDeniesEverything) {
  CompiledPolicy p;
  EXPECT_EQ(Decide(p, 1, 2, 0, kTcp).verdict, 0);
  EXPECT_EQ(Decide(p, 256, 257, 443, kTcp).verdict, 0);
}

}  // namespace
}  // namespace shunt::policy
