// SMI model parsing: TrafficTarget, TCPRoute/UDPRoute, HTTPRouteGroup
// (agent/model/smi.h). Every error is InvalidArgument naming the field.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/smi.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/parse_error.h"
#include "test/unit/yaml_doc.h"

namespace shunt::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr char kV1alpha3[] = "access.smi-spec.io/v1alpha3";
constexpr char kV1alpha2[] = "access.smi-spec.io/v1alpha2";

absl::StatusOr<TrafficTarget> Target(const std::string& yaml, const std::string& api = kV1alpha3) {
  return ParseTrafficTarget(shunt::testing::YamlDoc(yaml), api);
}

using shunt::testing::ErrorOf;

// A TrafficTarget in namespace `store` with the given spec body (indented two spaces).
std::string TargetYaml(const std::string& spec) {
  return "metadata: {name: tt, namespace: store}\nspec:\n" + spec;
}

constexpr char kDest[] = "  destination: {kind: ServiceAccount, name: store, namespace: store}\n";
constexpr char kSources[] =
    "  sources: [{kind: ServiceAccount, name: buyer, namespace: shoppers}]\n";
constexpr char kRules[] = "  rules: [{kind: TCPRoute, name: tcp}]\n";

// ---------------------------------------------------------------------------
// TrafficTarget

TEST(TrafficTargetTest, ParsesTheSpecExample) {
  // SMI.md 5.1.
  auto t = Target(R"(
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata:
  name: buyer-to-store
  namespace: store
spec:
  destination:
    kind: ServiceAccount
    name: store
    namespace: store
  rules:
  - kind: HTTPRouteGroup
    name: store-routes
    matches: ["purchase", "catalog"]
  - kind: TCPRoute
    name: tcp
  - kind: UDPRoute
    name: udp
  sources:
  - kind: ServiceAccount
    name: buyer
    namespace: shoppers
  - kind: ServiceAccount
    name: admin
    namespace: store
)");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_, "store");
  EXPECT_EQ(t->name, "buyer-to-store");
  EXPECT_EQ(t->Key(), "store/buyer-to-store");
  EXPECT_EQ(t->api_version, kV1alpha3);
  EXPECT_EQ(t->destination, (Subject{"store", "store"}));
  EXPECT_THAT(t->sources, ElementsAre(Subject{"shoppers", "buyer"}, Subject{"store", "admin"}));
  ASSERT_EQ(t->rules.size(), 3u);
  EXPECT_EQ(t->rules[0].kind, RouteKind::kHttp);
  EXPECT_EQ(t->rules[0].name, "store-routes");
  EXPECT_THAT(t->rules[0].matches, ElementsAre("purchase", "catalog"));
  EXPECT_EQ(t->rules[1].kind, RouteKind::kTcp);
  EXPECT_EQ(t->rules[1].name, "tcp");
  EXPECT_THAT(t->rules[1].matches, IsEmpty());
  EXPECT_EQ(t->rules[2].kind, RouteKind::kUdp);
  EXPECT_EQ(t->destination_port, std::nullopt);
}

TEST(TrafficTargetTest, MissingNamespacesDefault) {
  // No metadata.namespace: "default". No subject namespace: the TrafficTarget's.
  auto t = Target(R"(
metadata: {name: tt}
spec:
  destination: {kind: ServiceAccount, name: server}
  sources: [{kind: ServiceAccount, name: client}]
  rules: [{kind: TCPRoute, name: tcp}]
)");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->namespace_, "default");
  EXPECT_EQ(t->destination, (Subject{"default", "server"}));
  EXPECT_THAT(t->sources, ElementsAre(Subject{"default", "client"}));

  auto u =
      Target(TargetYaml("  destination: {kind: ServiceAccount, name: store}\n"
                        "  sources: [{kind: ServiceAccount, name: local}, "
                        "{kind: ServiceAccount, name: far, namespace: other}]\n" +
                        std::string(kRules)));
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->destination, (Subject{"store", "store"}));
  EXPECT_THAT(u->sources, ElementsAre(Subject{"store", "local"}, Subject{"other", "far"}));
}

TEST(TrafficTargetTest, DestinationInAnotherNamespaceIsRejected) {
  // SMI.md 7.8.
  auto t =
      Target(TargetYaml("  destination: {kind: ServiceAccount, name: store, namespace: other}\n" +
                        std::string(kSources) + kRules));
  EXPECT_EQ(
      ErrorOf(t),
      "spec.destination.namespace 'other' differs from the TrafficTarget's namespace 'store'; "
      "a TrafficTarget may only protect its own namespace");
}

TEST(TrafficTargetTest, SubjectsMustBeServiceAccounts) {
  EXPECT_EQ(ErrorOf(Target(TargetYaml("  destination: {kind: Group, name: store}\n" +
                                      std::string(kSources) + kRules))),
            "spec.destination.kind 'Group' is not supported (only ServiceAccount)");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) +
                                      "  sources:\n"
                                      "  - {kind: ServiceAccount, name: ok}\n"
                                      "  - {kind: User, name: bob}\n" +
                                      kRules))),
            "spec.sources[1].kind 'User' is not supported (only ServiceAccount)");
  EXPECT_EQ(
      ErrorOf(Target(TargetYaml(std::string(kDest) + "  sources: [{name: nokind}]\n" + kRules))),
      "spec.sources[0].kind is missing");
  EXPECT_EQ(ErrorOf(Target(
                TargetYaml(std::string(kDest) + "  sources: [{kind: ServiceAccount}]\n" + kRules))),
            "spec.sources[0].name is missing");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + "  sources: [buyer]\n" + kRules))),
            "spec.sources[0] must be an object with kind and name");
  EXPECT_EQ(
      ErrorOf(Target(TargetYaml(std::string(kDest) +
                                "  sources: [{kind: ServiceAccount, name: Bad_Name}]\n" + kRules))),
      "spec.sources[0].name 'Bad_Name' is not a valid name");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kSources) + kRules))),
            "spec.destination must be an object with kind and name");
}

TEST(TrafficTargetTest, SourcesMustListAtLeastOne) {
  const std::string want = "spec.sources must list at least one source";
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + "  sources: []\n" + kRules))), want);
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + kRules))), want);
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + "  sources: {}\n" + kRules))), want);
}

TEST(TrafficTargetTest, RulesMustListAtLeastOne) {
  const std::string want = "spec.rules must list at least one rule";
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + kSources + "  rules: []\n"))), want);
  EXPECT_EQ(ErrorOf(Target(TargetYaml(std::string(kDest) + kSources))), want);
}

TEST(TrafficTargetTest, UnknownRuleKindIsRejectedWithItsPath) {
  auto t =
      Target(TargetYaml(std::string(kDest) + kSources +
                        "  rules:\n  - {kind: TCPRoute, name: a}\n  - {kind: Foo, name: b}\n"));
  EXPECT_EQ(ErrorOf(t),
            "spec.rules[1].kind unknown route kind 'Foo' (expected TCPRoute, UDPRoute or "
            "HTTPRouteGroup)");
  // Kinds are case-sensitive, as in Kubernetes.
  EXPECT_THAT(ErrorOf(Target(TargetYaml(std::string(kDest) + kSources +
                                        "  rules: [{kind: tcproute, name: a}]\n"))),
              StartsWith("spec.rules[0].kind unknown route kind 'tcproute'"));
}

TEST(TrafficTargetTest, RuleFieldsAreChecked) {
  const std::string head = std::string(kDest) + kSources + "  rules:\n";
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {name: a}\n"))), "spec.rules[0].kind is missing");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {kind: TCPRoute}\n"))),
            "spec.rules[0].name is missing");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {kind: TCPRoute, name: ''}\n"))),
            "spec.rules[0].name is empty");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {kind: [TCPRoute], name: a}\n"))),
            "spec.rules[0].kind must be a string");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {kind: TCPRoute, name: a, matches: [x]}\n"))),
            "spec.rules[0].matches only applies to HTTPRouteGroup rules");
  EXPECT_EQ(ErrorOf(Target(TargetYaml(head + "  - {kind: HTTPRouteGroup, name: a, matches: x}\n"))),
            "spec.rules[0].matches must be a list of match names");
  EXPECT_EQ(
      ErrorOf(Target(TargetYaml(head + "  - {kind: HTTPRouteGroup, name: a, matches: [x, '']}\n"))),
      "spec.rules[0].matches[1] must be a match name");
}

TEST(TrafficTargetTest, EmptyMatchListMeansEveryMatch) {
  // `matches: []` and an omitted list are the same (the SDK's omitempty);
  // SMI.md 7.5: every match of the group.
  auto t = Target(TargetYaml(std::string(kDest) + kSources +
                             "  rules: [{kind: HTTPRouteGroup, name: g, matches: []}]\n"));
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_THAT(t->rules[0].matches, IsEmpty());
}

TEST(TrafficTargetTest, DestinationPortOnlyInV1alpha2) {
  const std::string yaml =
      TargetYaml("  destination: {kind: ServiceAccount, name: store, port: 8080}\n" +
                 std::string(kSources) + kRules);
  EXPECT_EQ(ErrorOf(Target(yaml)),
            "spec.destination.port only exists in v1alpha2 (v1alpha3 uses TCPRoute ports)");
  auto t = Target(yaml, kV1alpha2);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->api_version, kV1alpha2);
  EXPECT_EQ(t->destination_port, 8080);
  EXPECT_EQ(t->destination, (Subject{"store", "store"}));

  // Optional in v1alpha2 too.
  auto u = Target(TargetYaml(std::string(kDest) + kSources + kRules), kV1alpha2);
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->destination_port, std::nullopt);
}

TEST(TrafficTargetTest, DestinationPortMustBeAPort) {
  for (const char* bad : {"0", "65536", "-1", "http", "80.5"}) {
    auto t =
        Target(TargetYaml(std::string("  destination: {kind: ServiceAccount, name: store, port: ") +
                          bad + "}\n" + kSources + kRules),
               kV1alpha2);
    EXPECT_EQ(ErrorOf(t),
              std::string("spec.destination.port '") + bad + "' is not a port (1-65535)")
        << bad;
  }
  auto t = Target(TargetYaml("  destination: {kind: ServiceAccount, name: store, port: 65535}\n" +
                             std::string(kSources) + kRules),
                  kV1alpha2);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->destination_port, 65535);
}

TEST(TrafficTargetTest, MetadataAndSpecAreRequired) {
  EXPECT_EQ(ErrorOf(Target("spec: {}\n")), "metadata is missing");
  EXPECT_EQ(ErrorOf(Target("metadata: {namespace: store}\nspec: {}\n")),
            "metadata.name is missing");
  EXPECT_EQ(ErrorOf(Target("metadata: {name: tt}\n")), "spec is missing");
  EXPECT_EQ(ErrorOf(Target("metadata: {name: tt}\nspec: [1]\n")), "spec is missing");
  EXPECT_EQ(ErrorOf(Target("- a list\n")), "not a Kubernetes object (expected a mapping)");
  EXPECT_EQ(ErrorOf(Target("metadata: {name: UPPER}\nspec: {}\n")),
            "metadata.name 'UPPER' is not a valid DNS subdomain");
  EXPECT_EQ(ErrorOf(Target("metadata: {name: tt, namespace: a.b}\nspec: {}\n")),
            "metadata.namespace 'a.b' is not a valid DNS label");
}

// ---------------------------------------------------------------------------
// TCPRoute and UDPRoute

absl::StatusOr<PortRoute> Route(const std::string& yaml, RouteKind kind = RouteKind::kTcp) {
  return ParsePortRoute(shunt::testing::YamlDoc(yaml), kind);
}

TEST(PortRouteTest, UnknownFieldsAreRejectedNotReadAsAnyPort) {
  // A typo must not open every port.
  auto typo = Route("metadata: {name: r, namespace: data}\nspec: {match: {ports: [80]}}");
  EXPECT_EQ(typo.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(typo.status().message(), "spec has an unknown field 'match'");
  auto typo2 = Route("metadata: {name: r, namespace: data}\nspec: {matches: {port: [80]}}");
  EXPECT_EQ(typo2.status().message(), "spec.matches has an unknown field 'port'");
  auto named =
      Route("metadata: {name: r, namespace: data}\nspec: {matches: {name: x, ports: [80]}}");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_THAT(named->ports, ElementsAre(80));
}

TEST(PortRouteTest, ParsesPorts) {
  auto r = Route(R"(
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: pg-port, namespace: data}
spec:
  matches:
    ports: [5432, 6432]
)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, RouteKind::kTcp);
  EXPECT_EQ(r->Key(), "data/pg-port");
  EXPECT_THAT(r->ports, ElementsAre(5432, 6432));
}

TEST(PortRouteTest, UdpRouteKeepsItsKind) {
  auto r = Route("metadata: {name: dns}\nspec: {matches: {ports: [53]}}\n", RouteKind::kUdp);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, RouteKind::kUdp);
  EXPECT_EQ(r->namespace_, "default");
  EXPECT_THAT(r->ports, ElementsAre(53));
}

TEST(PortRouteTest, EveryShapeOfNoPortsMeansAnyPort) {
  // v1alpha3 `spec: {}`, no spec, no matches, no ports, `ports: []`, null ports.
  for (const char* spec :
       {"spec: {}\n", "", "spec:\n", "spec: {matches: {}}\n", "spec: {matches: {ports: []}}\n",
        "spec: {matches: {ports: ~}}\n", "spec: {matches: {name: x}}\n"}) {
    auto r = Route(std::string("metadata: {name: raw, namespace: n}\n") + spec);
    ASSERT_TRUE(r.ok()) << spec << ": " << r.status();
    EXPECT_THAT(r->ports, IsEmpty()) << spec;
    EXPECT_EQ(r->name, "raw");
  }
}

TEST(PortRouteTest, DuplicatePortsAreDeduplicatedInOrder) {
  auto r = Route("metadata: {name: r}\nspec: {matches: {ports: [8080, 80, 8080, 80, 443]}}\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->ports, ElementsAre(8080, 80, 443));
}

TEST(PortRouteTest, BadPortsAreRejectedWithTheirIndex) {
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: {matches: {ports: [80, 0]}}\n")),
            "spec.matches.ports[1] '0' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: {matches: {ports: [70000]}}\n")),
            "spec.matches.ports[0] '70000' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: {matches: {ports: [http]}}\n")),
            "spec.matches.ports[0] 'http' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: {matches: {ports: [[80]]}}\n")),
            "spec.matches.ports[0] '?' is not a port (1-65535)");
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: {matches: {ports: 80}}\n")),
            "spec.matches.ports must be a list of ports");
}

TEST(PortRouteTest, MatchesMustBeAnObject) {
  // A common mistake copied from HTTPRouteGroup: matches as a list.
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec:\n  matches:\n  - ports: [80]\n")),
            "spec.matches must be an object with a ports list (not a list)");
  EXPECT_EQ(ErrorOf(Route("metadata: {name: r}\nspec: [80]\n")), "spec must be an object");
  EXPECT_EQ(ErrorOf(Route("spec: {}\n")), "metadata is missing");
}

// ---------------------------------------------------------------------------
// HTTPRouteGroup

absl::StatusOr<HttpRouteGroup> Group(const std::string& matches_yaml) {
  return ParseHttpRouteGroup(shunt::testing::YamlDoc(
      "metadata: {name: store-routes, namespace: store}\nspec:\n  matches:\n" + matches_yaml));
}

TEST(HttpRouteGroupTest, ParsesTheSpecExample) {
  // SMI.md 5.1.
  auto g = ParseHttpRouteGroup(shunt::testing::YamlDoc(R"(
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata:
  name: store-routes
  namespace: store
spec:
  matches:
  - name: purchase
    pathRegex: "/buy/.*"
    methods: ["POST"]
  - name: catalog
    pathRegex: "/books"
    methods: ["GET", "HEAD"]
    headers:
      x-client: "buyer-.*"
  - name: admin
    pathRegex: "/admin.*"
    methods: ["*"]
)"));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->Key(), "store/store-routes");
  ASSERT_EQ(g->matches.size(), 3u);
  EXPECT_EQ(g->matches[0].name, "purchase");
  EXPECT_EQ(g->matches[0].path_regex, "/buy/.*");
  EXPECT_THAT(g->matches[0].methods, ElementsAre("POST"));
  EXPECT_THAT(g->matches[0].headers, IsEmpty());
  EXPECT_EQ(g->matches[1].name, "catalog");
  EXPECT_THAT(g->matches[1].methods, ElementsAre("GET", "HEAD"));
  EXPECT_THAT(g->matches[1].headers, ElementsAre(Pair("x-client", "buyer-.*")));
  EXPECT_EQ(g->matches[2].name, "admin");
  EXPECT_THAT(g->matches[2].methods, ElementsAre("*"));
}

TEST(HttpRouteGroupTest, HeadersAsMapOrListOfOneKeyMapsAreTheSame) {
  auto as_map = Group(R"(  - name: m
    headers:
      user-agent: ".*Android.*"
      cookie: "beta=1"
)");
  auto as_list = Group(R"(  - name: m
    headers:
    - user-agent: ".*Android.*"
    - cookie: "beta=1"
)");
  ASSERT_TRUE(as_map.ok()) << as_map.status();
  ASSERT_TRUE(as_list.ok()) << as_list.status();
  // Headers are ANDed, so their order means nothing: kept sorted by name.
  EXPECT_THAT(as_map->matches[0].headers,
              ElementsAre(Pair("cookie", "beta=1"), Pair("user-agent", ".*Android.*")));
  EXPECT_EQ(as_list->matches[0].headers, as_map->matches[0].headers);
}

TEST(HttpRouteGroupTest, HeaderOnlyMatchHasAnyPathAndMethod) {
  // SMI.md 1.2: only `name` is really required.
  auto g = Group("  - name: beta\n    headers: {cookie: 'beta=1'}\n  - name: bare\n");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->matches[0].path_regex, "");
  EXPECT_THAT(g->matches[0].methods, IsEmpty());
  EXPECT_THAT(g->matches[1].headers, IsEmpty());
}

TEST(HttpRouteGroupTest, BadHeadersAreRejected) {
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    headers: x\n")),
            "spec.matches[0].headers must be a map or a list of one-key maps");
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    headers: [x]\n")),
            "spec.matches[0].headers list items must be one-key maps");
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    headers: {x-a: [1, 2]}\n")),
            "spec.matches[0].headers.x-a must map a header name to a regex");
  EXPECT_THAT(ErrorOf(Group("  - name: m\n    headers: [{x-a: '(unclosed'}]\n")),
              StartsWith("spec.matches[0].headers.x-a '(unclosed' is not a valid RE2 regex: "));
}

TEST(HttpRouteGroupTest, PathRegexMustBeRe2) {
  auto g = Group("  - name: ok\n    pathRegex: '/a'\n  - name: bad\n    pathRegex: '/a[b'\n");
  EXPECT_THAT(ErrorOf(g),
              StartsWith("spec.matches[1].pathRegex '/a[b' is not a valid RE2 regex: "));
  // PCRE-only syntax (lookahead, backreference) is not RE2.
  EXPECT_THAT(ErrorOf(Group("  - name: m\n    pathRegex: '/(?=x)'\n")),
              StartsWith("spec.matches[0].pathRegex '/(?=x)' is not a valid RE2 regex: "));
  EXPECT_THAT(ErrorOf(Group("  - name: m\n    pathRegex: '/(a)\\1'\n")),
              StartsWith("spec.matches[0].pathRegex"));
}

TEST(HttpRouteGroupTest, MethodsMustBeTheCrdEnum) {
  auto ok = Group(
      "  - name: m\n    methods: ['*', GET, HEAD, PUT, POST, DELETE, CONNECT, OPTIONS, TRACE, "
      "PATCH]\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->matches[0].methods.size(), 10u);

  EXPECT_EQ(ErrorOf(Group("  - name: m\n    methods: [GET, get]\n")),
            "spec.matches[0].methods[1] 'get' is not an HTTP method");
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    methods: [FETCH]\n")),
            "spec.matches[0].methods[0] 'FETCH' is not an HTTP method");
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    methods: GET\n")),
            "spec.matches[0].methods must be a list");
  EXPECT_EQ(ErrorOf(Group("  - name: m\n    methods: [[GET]]\n")),
            "spec.matches[0].methods[0] '' is not an HTTP method");
}

TEST(HttpRouteGroupTest, MatchNamesAreRequiredAndUnique) {
  EXPECT_EQ(ErrorOf(Group("  - name: a\n  - name: b\n  - name: a\n")),
            "spec.matches[2].name 'a' is used twice");
  EXPECT_EQ(ErrorOf(Group("  - pathRegex: /x\n")), "spec.matches[0].name is missing");
  EXPECT_EQ(ErrorOf(Group("  - just-a-string\n")), "spec.matches[0] must be an object");
}

TEST(HttpRouteGroupTest, MatchesMustListAtLeastOne) {
  EXPECT_EQ(ErrorOf(Group("    []\n")), "spec.matches must list at least one match");
  EXPECT_EQ(
      ErrorOf(ParseHttpRouteGroup(shunt::testing::YamlDoc("metadata: {name: g}\nspec: {}\n"))),
      "spec.matches must list at least one match");
  // v1alpha1/2 shape: matches at the top level, no spec.
  EXPECT_EQ(ErrorOf(ParseHttpRouteGroup(
                shunt::testing::YamlDoc("metadata: {name: g}\nmatches: [{name: a}]\n"))),
            "spec is missing");
}

TEST(RouteKindTest, Names) {
  EXPECT_STREQ(RouteKindName(RouteKind::kTcp), "TCPRoute");
  EXPECT_STREQ(RouteKindName(RouteKind::kUdp), "UDPRoute");
  EXPECT_STREQ(RouteKindName(RouteKind::kHttp), "HTTPRouteGroup");
}

}  // namespace
}  // namespace shunt::model
