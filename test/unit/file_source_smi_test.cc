// FileSource + ObjectStore with the SMI access kinds.
#include "agent/source/file_source.h"
#include "test/unit/file_source_fixture.h"

namespace shunt::source {
namespace {

using namespace file_source_test;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

// --- SMI kinds ---------------------------------------------------------------

// A TrafficTarget `ns/name`: SA `client` may reach SA `server` through one rule
// of `rule_kind` named `route`.
std::string TargetYaml(const std::string& ns, const std::string& name,
                       const std::string& api = "access.smi-spec.io/v1alpha3",
                       const std::string& rule_kind = "TCPRoute") {
  return absl::StrCat("apiVersion: ", api, "\nkind: TrafficTarget\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec:\n",
                      "  destination: {kind: ServiceAccount, name: server, namespace: ", ns, "}\n",
                      "  sources: [{kind: ServiceAccount, name: client}]\n",
                      "  rules: [{kind: ", rule_kind, ", name: route}]\n");
}
// A TCPRoute or UDPRoute with the given ports list ("[80]", "[]").
std::string PortRouteYaml(const std::string& kind, const std::string& ns, const std::string& name,
                          const std::string& ports,
                          const std::string& api = "specs.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: ", kind, "\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec: {matches: {ports: ", ports, "}}\n");
}
std::string GroupYaml(const std::string& ns, const std::string& name, const std::string& path_regex,
                      const std::string& api = "specs.smi-spec.io/v1alpha4") {
  return absl::StrCat("apiVersion: ", api, "\nkind: HTTPRouteGroup\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec:\n  matches:\n  - {name: m, pathRegex: '",
                      path_regex, "'}\n");
}

TEST_F(FileSourceTest, ReadsSmiKindsOfEverySupportedVersion) {
  Write("smi.yaml", TargetYaml("n", "tt3") + "---\n" +
                        R"(apiVersion: access.smi-spec.io/v1alpha2
kind: TrafficTarget
metadata: {name: tt2, namespace: n}
spec:
  destination: {kind: ServiceAccount, name: server, port: 8080}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: HTTPRouteGroup, name: g4, matches: [m]}]
---
apiVersion: specs.smi-spec.io/v1alpha3
kind: TCPRoute
metadata: {name: raw, namespace: n}
spec: {}
---
)" + PortRouteYaml("TCPRoute", "n", "tcp4", "[80, 443]") +
                        "---\n" + PortRouteYaml("UDPRoute", "n", "udp4", "[53]") + "---\n" +
                        GroupYaml("n", "g4", "/v4") + "---\n" +
                        GroupYaml("n", "g3", "/v3", "specs.smi-spec.io/v1alpha3"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(Strings(s.problems), IsEmpty());
  EXPECT_THAT(Strings(s.notices), IsEmpty());
  EXPECT_EQ(s.documents, 7);
  EXPECT_THAT(s.pods, IsEmpty());

  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt3", "n/tt2"));
  EXPECT_EQ(s.traffic_targets[0].api_version, "access.smi-spec.io/v1alpha3");
  EXPECT_EQ(s.traffic_targets[0].destination_port, std::nullopt);
  EXPECT_EQ(s.traffic_targets[1].api_version, "access.smi-spec.io/v1alpha2");
  EXPECT_EQ(s.traffic_targets[1].destination_port, 8080);

  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/raw", "n/tcp4"));
  EXPECT_THAT(s.tcp_routes[0].ports, IsEmpty());  // v1alpha3 `spec: {}` = any port
  EXPECT_THAT(s.tcp_routes[1].ports, ElementsAre(80, 443));
  EXPECT_EQ(s.tcp_routes[1].kind, model::RouteKind::kTcp);

  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/udp4"));
  EXPECT_EQ(s.udp_routes[0].kind, model::RouteKind::kUdp);
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(53));

  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/g4", "n/g3"));
  EXPECT_EQ(s.http_route_groups[1].matches[0].path_regex, "/v3");
}

TEST_F(FileSourceTest, UnsupportedSmiVersionsAreProblems) {
  // Each document is 7 (TrafficTarget) or 4 (routes) lines plus "---".
  Write("old.yaml",
        TargetYaml("n", "v1", "access.smi-spec.io/v1alpha1") + "---\n" +
            TargetYaml("n", "draft", "access.smi-spec.io/v1alpha4") + "---\n" +
            TargetYaml("n", "group", "specs.smi-spec.io/v1alpha3") + "---\n" +
            PortRouteYaml("TCPRoute", "n", "t", "[80]", "specs.smi-spec.io/v1alpha2") + "---\n" +
            PortRouteYaml("UDPRoute", "n", "u", "[53]", "specs.smi-spec.io/v1alpha3") + "---\n" +
            GroupYaml("n", "g", "/", "specs.smi-spec.io/v1alpha2") + "---\n" +
            PortRouteYaml("TCPRoute", "n", "wrong-group", "[80]", "access.smi-spec.io/v1alpha4"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.traffic_targets, IsEmpty());
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.udp_routes, IsEmpty());
  EXPECT_THAT(s.http_route_groups, IsEmpty());
  EXPECT_THAT(s.notices, IsEmpty());  // a handled kind in the wrong version is an error, not a skip
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre(
          "old.yaml:1 TrafficTarget n/v1: apiVersion access.smi-spec.io/v1alpha1 of TrafficTarget "
          "is "
          "not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:9 TrafficTarget n/draft: apiVersion access.smi-spec.io/v1alpha4 of "
          "TrafficTarget "
          "is not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:17 TrafficTarget n/group: apiVersion specs.smi-spec.io/v1alpha3 of "
          "TrafficTarget "
          "is not supported (use access.smi-spec.io/v1alpha3 or v1alpha2)",
          "old.yaml:25 TCPRoute n/t: apiVersion specs.smi-spec.io/v1alpha2 of TCPRoute is not "
          "supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)",
          "old.yaml:30 UDPRoute n/u: apiVersion specs.smi-spec.io/v1alpha3 of UDPRoute is not "
          "supported (use specs.smi-spec.io/v1alpha4)",
          "old.yaml:35 HTTPRouteGroup n/g: apiVersion specs.smi-spec.io/v1alpha2 of HTTPRouteGroup "
          "is not supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)",
          "old.yaml:42 TCPRoute n/wrong-group: apiVersion access.smi-spec.io/v1alpha4 of TCPRoute "
          "is "
          "not supported (use specs.smi-spec.io/v1alpha4 or v1alpha3)"));
}

TEST_F(FileSourceTest, InvalidSmiObjectsAreProblemsWithTheFieldPath) {
  Write("bad.yaml", R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: cross, namespace: a}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: b}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: TCPRoute, name: route}]
---
)" + PortRouteYaml("TCPRoute", "a", "zero", "[0]") +
                        "---\n" + PortRouteYaml("UDPRoute", "a", "list", "{}") + "---\n" +
                        GroupYaml("a", "regex", "/a(") + "---\n" + TargetYaml("a", "ok"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("a/ok"));
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.udp_routes, IsEmpty());
  EXPECT_THAT(s.http_route_groups, IsEmpty());
  ASSERT_THAT(s.problems, SizeIs(4));
  std::vector<std::string> got = Strings(s.problems);
  EXPECT_EQ(got[0],
            "bad.yaml:1 TrafficTarget a/cross: spec.destination.namespace 'b' differs from the "
            "TrafficTarget's namespace 'a'; a TrafficTarget may only protect its own namespace");
  EXPECT_EQ(got[1],
            "bad.yaml:9 TCPRoute a/zero: spec.matches.ports[0] '0' is not a port (1-65535)");
  EXPECT_EQ(got[2], "bad.yaml:14 UDPRoute a/list: spec.matches.ports must be a list of ports");
  EXPECT_THAT(got[3],
              HasSubstr("bad.yaml:19 HTTPRouteGroup a/regex: spec.matches[0].pathRegex '/a(' "
                        "is not a valid RE2 regex: "));
}

TEST_F(FileSourceTest, SmiObjectsWithoutANamespaceAreInDefault) {
  Write("smi.yaml", R"(apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: tt}
spec:
  destination: {kind: ServiceAccount, name: server}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: TCPRoute, name: route}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: route}
spec: {matches: {ports: [1]}}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: UDPRoute
metadata: {name: broken}
spec: {matches: {ports: [x]}}
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("default/tt"));
  EXPECT_EQ(s.traffic_targets[0].destination, (model::Subject{"default", "server"}));
  EXPECT_THAT(s.traffic_targets[0].sources, ElementsAre(model::Subject{"default", "client"}));
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("default/route"));
  EXPECT_THAT(Strings(s.problems),
              ElementsAre("smi.yaml:14 UDPRoute default/broken: spec.matches.ports[0] 'x' is not a "
                          "port (1-65535)"));
}

TEST_F(FileSourceTest, SmiObjectsInAListAreUnpacked) {
  Write("list.yaml", R"(apiVersion: v1
kind: List
items:
- apiVersion: specs.smi-spec.io/v1alpha4
  kind: TCPRoute
  metadata: {name: route, namespace: n}
  spec: {matches: {ports: [5432]}}
- apiVersion: access.smi-spec.io/v1alpha3
  kind: TrafficTarget
  metadata: {name: tt, namespace: n}
  spec:
    destination: {kind: ServiceAccount, name: server}
    sources: [{kind: ServiceAccount, name: client, namespace: other}]
    rules: [{kind: TCPRoute, name: route}]
)");
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(s.problems, IsEmpty());
  EXPECT_EQ(s.documents, 2);
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_THAT(s.traffic_targets[0].sources, ElementsAre(model::Subject{"other", "client"}));
}

TEST_F(FileSourceTest, DuplicateSmiObjectsAreRejectedPerKind) {
  // One name across the four kinds and across namespaces is fine; the same
  // kind/namespace/name twice is not, whichever file it is in.
  Write("a.yaml", TargetYaml("n", "route") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[1]") + "---\n" +
                      PortRouteYaml("UDPRoute", "n", "route", "[2]") + "---\n" +
                      GroupYaml("n", "route", "/a") + "---\n" + TargetYaml("other", "route"));
  Write("b.yaml", TargetYaml("n", "route") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[3]") + "---\n" +
                      PortRouteYaml("UDPRoute", "n", "route", "[4]") + "---\n" +
                      GroupYaml("n", "route", "/b") + "---\n" +
                      PortRouteYaml("TCPRoute", "n", "route", "[5]"));
  Loader src(dir_);
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/route", "other/route"));
  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.tcp_routes[0].ports, ElementsAre(1));
  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(2));
  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/route"));
  EXPECT_EQ(s.http_route_groups[0].matches[0].path_regex, "/a");
  EXPECT_THAT(
      Strings(s.problems),
      ElementsAre("b.yaml:1 TrafficTarget n/route: duplicate: TrafficTarget n/route is "
                  "already defined in a.yaml; this copy is ignored",
                  "b.yaml:9 TCPRoute n/route: duplicate: TCPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:26 TCPRoute n/route: duplicate: TCPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:14 UDPRoute n/route: duplicate: UDPRoute n/route is already defined "
                  "in a.yaml; this copy is ignored",
                  "b.yaml:19 HTTPRouteGroup n/route: duplicate: HTTPRouteGroup n/route is "
                  "already defined in a.yaml; this copy is ignored"));
}

TEST_F(FileSourceTest, InvalidSmiObjectKeepsItsLastGoodVersion) {
  Write("smi.yaml", TargetYaml("n", "tt") + "---\n" +
                        PortRouteYaml("TCPRoute", "n", "route", "[80]") + "---\n" +
                        PortRouteYaml("UDPRoute", "n", "dns", "[53]") + "---\n" +
                        GroupYaml("n", "g", "/ok"));
  Loader src(dir_);
  Snapshot s = Load(src);
  ASSERT_THAT(s.problems, IsEmpty());

  // Bad edits to all four: each keeps its previous version.
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha3", "GRPCRoute") + "---\n" +
                        PortRouteYaml("TCPRoute", "n", "route", "[80, 99999]") + "---\n" +
                        PortRouteYaml("UDPRoute", "n", "dns", "[domain]") + "---\n" +
                        GroupYaml("n", "g", "("));
  s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_EQ(s.traffic_targets[0].rules[0].kind, model::RouteKind::kTcp);
  ASSERT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  EXPECT_THAT(s.tcp_routes[0].ports, ElementsAre(80));
  ASSERT_THAT(SmiKeys(s.udp_routes), ElementsAre("n/dns"));
  EXPECT_THAT(s.udp_routes[0].ports, ElementsAre(53));
  ASSERT_THAT(SmiKeys(s.http_route_groups), ElementsAre("n/g"));
  EXPECT_EQ(s.http_route_groups[0].matches[0].path_regex, "/ok");
  ASSERT_THAT(s.problems, SizeIs(4));
  for (const model::Problem& p : s.problems)
    EXPECT_THAT(p.reason, HasSubstr("; keeping its last good version")) << p.ToString();
  EXPECT_EQ(s.problems[0].ToString(),
            "smi.yaml:1 TrafficTarget n/tt: spec.rules[0].kind unknown route kind 'GRPCRoute' "
            "(expected TCPRoute, UDPRoute or HTTPRouteGroup); keeping its last good version");

  // Fixed: the new version replaces the kept one.
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha3", "UDPRoute"));
  s = Load(src);
  ASSERT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_EQ(s.traffic_targets[0].rules[0].kind, model::RouteKind::kUdp);
  EXPECT_THAT(s.tcp_routes, IsEmpty());
  EXPECT_THAT(s.problems, IsEmpty());
}

TEST_F(FileSourceTest, SyntaxErrorKeepsTheFilesLastGoodSmiObjects) {
  Write("smi.yaml",
        TargetYaml("n", "tt") + "---\n" + PortRouteYaml("TCPRoute", "n", "route", "[80]"));
  Loader src(dir_);
  ASSERT_THAT(Load(src).problems, IsEmpty());
  Write("smi.yaml", TargetYaml("n", "tt") + "---\nspec: {matches: [\n");
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  EXPECT_THAT(SmiKeys(s.tcp_routes), ElementsAre("n/route"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, HasSubstr("; keeping this file's last good objects"));
}

// Bug (contract): the header says "A rejected object keeps its last good
// version in force", but a TrafficTarget edited to an unsupported apiVersion is
// reported as a problem and withdrawn at once (file_source.cc: the
// unsupported_version branch `continue`s without looking at the previous
// version). Every other rejection of an SMI object keeps the last good one.
TEST_F(FileSourceTest, SmiObjectInAnUnsupportedVersionKeepsItsLastGoodVersion) {
  Write("smi.yaml", TargetYaml("n", "tt"));
  Loader src(dir_);
  ASSERT_THAT(SmiKeys(Load(src).traffic_targets), ElementsAre("n/tt"));
  Write("smi.yaml", TargetYaml("n", "tt", "access.smi-spec.io/v1alpha1"));
  Snapshot s = Load(src);
  EXPECT_THAT(SmiKeys(s.traffic_targets), ElementsAre("n/tt"));
  ASSERT_THAT(s.problems, SizeIs(1));
  EXPECT_THAT(s.problems[0].reason, HasSubstr("; keeping its last good version"));
}

}  // namespace
}  // namespace shunt::source
