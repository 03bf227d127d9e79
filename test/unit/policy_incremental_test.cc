// PolicyCompiler's incremental updates (agent/policy/compiler.h): after any
// sequence of edits, the policy equals a from-scratch compile of the same
// objects, only the TrafficTargets that changed (or whose routes changed)
// are recompiled, and TakeChanges() lists exactly the entries a writer must
// touch to go from the previous policy to the new one.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/policy/compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::policy {
namespace {

using model::RouteKind;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

model::TrafficTarget Target(const std::string& name, const std::string& dst,
                            std::vector<std::string> srcs, std::vector<model::TargetRule> rules) {
  model::TrafficTarget t{.namespace_ = "ns",
                         .name = name,
                         .api_version = "access.smi-spec.io/v1alpha3",
                         .destination = {"ns", dst}};
  for (auto& s : srcs) t.sources.push_back({"ns", s});
  t.rules = std::move(rules);
  return t;
}
model::TargetRule Rule(RouteKind k, const std::string& name,
                       std::vector<std::string> matches = {}) {
  return {.kind = k, .name = name, .matches = std::move(matches)};
}
model::PortRoute Route(RouteKind k, const std::string& name, std::vector<uint16_t> ports) {
  return {.kind = k, .namespace_ = "ns", .name = name, .ports = std::move(ports)};
}

std::vector<std::string> ProblemStrings(const CompiledPolicy& p) {
  std::vector<std::string> out;
  for (const auto& pr : p.problems) out.push_back(pr.ToString());
  return out;
}

class IncrementalTest : public ::testing::Test {
 protected:
  // The compiler's policy must equal a full compile of `o`, and the changes
  // it reports must bring `mirror_` (the previous policy) to the new one.
  void CheckAgainstFullCompile(const model::Objects& o) {
    const CompiledPolicy& inc = compiler_.policy();
    CompiledPolicy full = Compile(o, ids_, rule_ids_);
    ASSERT_EQ(inc.entries, full.entries);
    EXPECT_EQ(inc.rules, full.rules);
    EXPECT_EQ(ProblemStrings(inc), ProblemStrings(full));
    EXPECT_EQ(inc.identities, full.identities);
    EXPECT_EQ(inc.l7_targets, full.l7_targets);
    for (const EntryKey& k : compiler_.TakeChanges()) {
      auto it = inc.entries.find(k);
      if (it == inc.entries.end()) {
        EXPECT_EQ(mirror_.erase(k), 1u) << "a removal of an entry that was not there";
      } else {
        auto m = mirror_.find(k);
        EXPECT_TRUE(m == mirror_.end() || m->second != it->second) << "an unchanged entry reported";
        mirror_[k] = it->second;
      }
    }
    ASSERT_EQ(mirror_, inc.entries) << "the reported changes miss an entry";
  }

  endpoints::IdentityAllocator ids_, rule_ids_;
  PolicyCompiler compiler_{ids_, rule_ids_};
  absl::btree_map<EntryKey, Grant> mirror_;
};

TEST_F(IncrementalTest, OnlyWhatChangedIsRecompiled) {
  model::Objects o;
  o.tcp_routes = {Route(RouteKind::kTcp, "web", {80}), Route(RouteKind::kTcp, "db", {5432})};
  o.traffic_targets = {Target("a", "srv", {"c1"}, {Rule(RouteKind::kTcp, "web")}),
                       Target("b", "db", {"srv"}, {Rule(RouteKind::kTcp, "db")}),
                       Target("c", "srv", {"c2"}, {Rule(RouteKind::kTcp, "missing")})};
  EXPECT_EQ(compiler_.Update(o), 3);
  CheckAgainstFullCompile(o);
  EXPECT_EQ(compiler_.Update(o), 0) << "nothing changed";
  EXPECT_THAT(compiler_.TakeChanges(), IsEmpty());

  o.traffic_targets[0].sources.push_back({"ns", "c3"});
  EXPECT_EQ(compiler_.Update(o), 1);
  CheckAgainstFullCompile(o);

  // A route change recompiles its users only.
  o.tcp_routes[1].ports = {5432, 5433};
  EXPECT_EQ(compiler_.Update(o), 1);
  CheckAgainstFullCompile(o);

  // A dangling reference resolves when the route appears.
  o.tcp_routes.push_back(Route(RouteKind::kTcp, "missing", {}));
  EXPECT_EQ(compiler_.Update(o), 1);
  CheckAgainstFullCompile(o);
  EXPECT_THAT(compiler_.policy().problems, IsEmpty());

  // ...and dangles again when it goes.
  o.tcp_routes.pop_back();
  EXPECT_EQ(compiler_.Update(o), 1);
  CheckAgainstFullCompile(o);
  EXPECT_THAT(
      ProblemStrings(compiler_.policy()),
      ElementsAre("TrafficTarget ns/c: rule TCPRoute 'missing' does not exist in namespace ns; "
                  "it grants nothing"));

  // Removing a TrafficTarget withdraws its grants and its name.
  o.traffic_targets.erase(o.traffic_targets.begin());
  EXPECT_EQ(compiler_.Update(o), 0);
  CheckAgainstFullCompile(o);
  EXPECT_EQ(compiler_.policy().rules.size(), 2u);

  // Reordered objects are not changed objects.
  std::swap(o.traffic_targets[0], o.traffic_targets[1]);
  std::swap(o.tcp_routes[0], o.tcp_routes[1]);
  EXPECT_EQ(compiler_.Update(o), 0);
  CheckAgainstFullCompile(o);
}

TEST_F(IncrementalTest, WithdrawingAnAllowUncoversTheL7EntriesItCovered) {
  model::Objects o;
  o.tcp_routes = {Route(RouteKind::kTcp, "any", {}), Route(RouteKind::kTcp, "web", {80})};
  o.http_route_groups = {{.namespace_ = "ns", .name = "api", .matches = {{.name = "get"}}}};
  o.traffic_targets = {
      Target("http", "srv", {"cli"}, {Rule(RouteKind::kHttp, "api"), Rule(RouteKind::kTcp, "web")}),
      Target("l4", "srv", {"cli"}, {Rule(RouteKind::kTcp, "any")})};
  compiler_.Update(o);
  CheckAgainstFullCompile(o);
  const uint32_t cli = ids_.Get({"ns", "cli"}), srv = ids_.Get({"ns", "srv"});
  // The any-port ALLOW covers port 80: the entry names the L4 TrafficTarget.
  EXPECT_EQ(compiler_.policy().entries.at({cli, srv, 80, kTcp}).verdict, SHUNT_VERDICT_ALLOW);

  o.traffic_targets.pop_back();  // only the HTTP grant is left on port 80
  compiler_.Update(o);
  CheckAgainstFullCompile(o);
  EXPECT_EQ(compiler_.policy().entries.at({cli, srv, 80, kTcp}).verdict, SHUNT_VERDICT_L7);
  EXPECT_EQ(compiler_.policy().l7_targets, 1);
}

TEST_F(IncrementalTest, TiesNameTheFirstTrafficTargetByNameWhateverTheEditOrder) {
  model::Objects o;
  o.tcp_routes = {Route(RouteKind::kTcp, "web", {80})};
  o.traffic_targets = {Target("z", "srv", {"cli"}, {Rule(RouteKind::kTcp, "web")})};
  compiler_.Update(o);
  o.traffic_targets.push_back(Target("a", "srv", {"cli"}, {Rule(RouteKind::kTcp, "web")}));
  compiler_.Update(o);
  CheckAgainstFullCompile(o);
  const auto& e = *compiler_.policy().entries.begin();
  EXPECT_EQ(compiler_.policy().rules.at(e.second.rule_id), "ns/a");
}

TEST_F(IncrementalTest, DuplicatesCountOnce) {
  model::Objects o;
  o.tcp_routes = {Route(RouteKind::kTcp, "web", {80}), Route(RouteKind::kTcp, "web", {22})};
  o.traffic_targets = {Target("a", "srv", {"cli"}, {Rule(RouteKind::kTcp, "web")}),
                       Target("a", "srv", {"other"}, {Rule(RouteKind::kTcp, "web")})};
  compiler_.Update(o);
  CheckAgainstFullCompile(o);
  ASSERT_EQ(compiler_.policy().entries.size(), 1u);
  EXPECT_EQ(compiler_.policy().entries.begin()->first.port, 80);
}

// Random edits of every kind, checked against a full compile after each.
TEST_F(IncrementalTest, RandomEditsAgreeWithFullCompiles) {
  std::mt19937 rng(20261125);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const std::vector<std::string> sas = {"a", "b", "c", "d", "e", "f"};
  const std::vector<RouteKind> kinds = {RouteKind::kTcp, RouteKind::kUdp, RouteKind::kHttp};
  auto random_ports = [&] {
    std::vector<uint16_t> ports;
    for (int i = pick(3); i > 0; --i) ports.push_back(static_cast<uint16_t>(80 + pick(4)));
    return ports;
  };
  auto random_target = [&](const std::string& name) {
    std::vector<std::string> srcs;
    for (int i = 1 + pick(3); i > 0; --i) srcs.push_back(sas[pick(sas.size())]);
    std::vector<model::TargetRule> rules;
    for (int i = 1 + pick(3); i > 0; --i) {
      RouteKind k = kinds[pick(3)];
      std::vector<std::string> matches;
      if (k == RouteKind::kHttp && pick(2)) matches.push_back(pick(2) ? "m0" : "nope");
      rules.push_back(Rule(k, absl::StrCat("r", pick(5)), matches));
    }
    model::TrafficTarget t = Target(name, sas[pick(sas.size())], srcs, rules);
    if (pick(5) == 0) {
      t.api_version = "access.smi-spec.io/v1alpha2";
      t.destination_port = static_cast<uint16_t>(80 + pick(4));
    }
    return t;
  };
  model::Objects o;
  for (int step = 0; step < 600; ++step) {
    switch (pick(8)) {
      case 0:
      case 1:
        o.traffic_targets.push_back(random_target(absl::StrCat("t", pick(40))));
        break;
      case 2:
        if (!o.traffic_targets.empty())
          o.traffic_targets.erase(o.traffic_targets.begin() + pick(o.traffic_targets.size()));
        break;
      case 3:
        if (!o.traffic_targets.empty()) {
          auto& t = o.traffic_targets[pick(o.traffic_targets.size())];
          t = random_target(t.name);
        }
        break;
      case 4: {
        auto& routes = pick(2) ? o.tcp_routes : o.udp_routes;
        RouteKind k = &routes == &o.tcp_routes ? RouteKind::kTcp : RouteKind::kUdp;
        routes.push_back(Route(k, absl::StrCat("r", pick(5)), random_ports()));
        break;
      }
      case 5: {
        auto& routes = pick(2) ? o.tcp_routes : o.udp_routes;
        if (routes.empty()) break;
        if (pick(2))
          routes.erase(routes.begin() + pick(routes.size()));
        else
          routes[pick(routes.size())].ports = random_ports();
        break;
      }
      case 6:
        if (pick(2) || o.http_route_groups.empty())
          o.http_route_groups.push_back({.namespace_ = "ns",
                                         .name = absl::StrCat("r", pick(5)),
                                         .matches = {{.name = pick(2) ? "m0" : "m1"}}});
        else
          o.http_route_groups.erase(o.http_route_groups.begin() + pick(o.http_route_groups.size()));
        break;
      case 7:
        std::shuffle(o.traffic_targets.begin(), o.traffic_targets.end(), rng);
        break;
    }
    compiler_.Update(o);
    SCOPED_TRACE(absl::StrCat("step ", step));
    CheckAgainstFullCompile(o);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace shunt::policy

namespace shunt::policy {
namespace {

// One namespace listing many ports must not fill the map shared by all: its
// TrafficTargets together take at most the namespace budget; one that would
// go over keeps its last grants that fitted (or grants nothing), and says
// why; another namespace still gets its grants.
TEST(NamespaceBudgetTest, ATrafficTargetOverItsNamespacesBudgetKeepsItsLastFittingGrants) {
  endpoints::IdentityAllocator ids, rule_ids;
  PolicyCompiler compiler(ids, rule_ids, /*namespace_budget=*/10);
  model::Objects o;
  o.traffic_targets = {Target("small", "db", {"api"}, {Rule(RouteKind::kTcp, "few")})};
  o.tcp_routes = {Route(RouteKind::kTcp, "few", {1, 2, 3})};
  compiler.Update(o);
  EXPECT_EQ(compiler.policy().entries.size(), 3u);

  // The route grows to 20 ports: over the budget, the 3 ports stay.
  std::vector<uint16_t> many;
  for (uint16_t p = 1; p <= 20; ++p) many.push_back(p);
  o.tcp_routes = {Route(RouteKind::kTcp, "few", many)};
  o.traffic_targets[0].sources.push_back({"ns", "web"});  // the object changes too
  compiler.Update(o);
  EXPECT_EQ(compiler.policy().entries.size(), 3u);
  EXPECT_THAT(ProblemStrings(compiler.policy()),
              ElementsAre("TrafficTarget ns/small: grants 40 policy entries (sources x ports x "
                          "protocols), but namespace ns has 10 of its 10 left (the policy map is "
                          "shared by every namespace); keeping its last grants that fitted"));

  // A second TrafficTarget of the same namespace that does not fit either,
  // never having fitted, grants nothing; one in another namespace does.
  model::TrafficTarget big = Target("big", "db", {"api"}, {Rule(RouteKind::kTcp, "few")});
  model::TrafficTarget other = Target("other", "db", {"api"}, {Rule(RouteKind::kTcp, "two")});
  other.namespace_ = "elsewhere";
  other.destination.namespace_ = "elsewhere";
  o.traffic_targets.push_back(big);
  o.traffic_targets.push_back(other);
  o.tcp_routes.push_back(
      {.kind = RouteKind::kTcp, .namespace_ = "elsewhere", .name = "two", .ports = {80, 443}});
  compiler.Update(o);
  EXPECT_EQ(compiler.policy().entries.size(), 5u);
  const auto problems = ProblemStrings(compiler.policy());
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[1],
            "TrafficTarget ns/big: grants 20 policy entries (sources x ports x protocols), but "
            "namespace ns has 7 of its 10 left (the policy map is shared by every namespace); it "
            "grants nothing");

  // Back under the budget: everything fits again.
  o.tcp_routes[0] = Route(RouteKind::kTcp, "few", {1, 2});
  compiler.Update(o);
  // small: {api, web} x {1, 2}; big: api x {1, 2}, the same keys as part
  // of small's (each TrafficTarget's grants count against the budget,
  // shared keys or not); other: 2.
  EXPECT_EQ(compiler.policy().entries.size(), 4u + 2u);
  EXPECT_THAT(ProblemStrings(compiler.policy()), IsEmpty());
}

}  // namespace
}  // namespace shunt::policy
