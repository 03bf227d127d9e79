// The service plan (agent/services/service_plan.h): ready backends per
// ClusterIP and port, TrafficSplit weights as slot tables, and the problems
// a user must hear about.
#include "agent/services/service_plan.h"

#include <arpa/inet.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/service.h"
#include "test/unit/ipv4_util.h"

namespace shunt::services {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using test_util::Ipv4Be;

model::Service Svc(const std::string& name, const char* vip, uint16_t port = 80,
                   model::Protocol proto = model::Protocol::kTcp) {
  model::Service s;
  s.namespace_ = "shop";
  s.name = name;
  s.cluster_ip = vip;
  s.cluster_ip_be = Ipv4Be(vip);
  s.ports = {{.name = "http", .port = port, .protocol = proto, .target_port = 8080}};
  return s;
}

model::EndpointSlice Slice(const std::string& svc, std::vector<std::pair<const char*, bool>> eps,
                           uint16_t port = 8080) {
  model::EndpointSlice e;
  e.namespace_ = "shop";
  e.name = svc + "-x";
  e.service_name = svc;
  e.ports = {{.name = "http", .port = port}};
  for (auto [ip, ready] : eps) {
    model::Endpoint ep;
    ep.addresses = {ip};
    ep.addresses_be = {Ipv4Be(ip)};
    ep.ready = ready;
    e.endpoints.push_back(ep);
  }
  return e;
}

std::map<uint32_t, int> Shares(const ServiceEntry& e) {
  std::map<uint32_t, int> n;
  for (uint32_t i : e.slots) ++n[e.backends[i].ip_be];
  return n;
}

TEST(WeightedSlotsTest, SharesFollowWeightsExactlyWhenTheyDivide) {
  auto slots = WeightedSlots({90, 10}, 1000);
  ASSERT_EQ(slots.size(), 1000u);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 0u), 900);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 1u), 100);
  // Interleaved: the first slots alternate while both have some left.
  EXPECT_THAT(std::vector<uint32_t>(slots.begin(), slots.begin() + 4), ElementsAre(0, 1, 0, 1));
}

TEST(WeightedSlotsTest, LargestRemainderGivesEverySlotOnceAndZeroWeightsNone) {
  auto slots = WeightedSlots({1, 1, 1, 0}, 1000);
  ASSERT_EQ(slots.size(), 1000u);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 0u), 334);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 1u), 333);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 2u), 333);
  EXPECT_EQ(std::count(slots.begin(), slots.end(), 3u), 0);
  EXPECT_THAT(WeightedSlots({0, 0}, 1000), IsEmpty());
  EXPECT_THAT(WeightedSlots({}, 1000), IsEmpty());
}

TEST(ServicePlanTest, ReadyEndpointsOnTheNamedPortAreTheBackends) {
  model::Objects o;
  o.services = {Svc("web", "10.96.0.10")};
  auto slice = Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", false}, {"10.1.0.3", true}});
  slice.endpoints[2].terminating = true;  // ready but terminating: no new connections
  o.endpoint_slices = {slice, Slice("web", {{"10.1.0.4", true}})};
  o.endpoint_slices[1].name = "web-y";
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  const ServiceEntry& e = p.entries[0];
  EXPECT_EQ(e.vip_be, Ipv4Be("10.96.0.10"));
  EXPECT_EQ(e.port, 80);
  ASSERT_EQ(e.backends.size(), 2u);
  EXPECT_EQ(e.backends[0].ip_be, Ipv4Be("10.1.0.1"));
  EXPECT_EQ(e.backends[0].port, 8080);
  EXPECT_EQ(e.backends[1].ip_be, Ipv4Be("10.1.0.4"));
  EXPECT_THAT(e.slots, ElementsAre(0, 1));
  EXPECT_THAT(p.problems, IsEmpty());
}

// A hostile manifest's Service claiming a pod's address as its clusterIP
// would take that pod's traffic at connect(): refused whole, with a reason;
// the other services stay.
TEST(ServicePlanTest, AClusterIpThatIsAPodsAddressIsRefused) {
  model::Objects o;
  model::Pod victim;
  victim.namespace_ = "shop";
  victim.name = "db-0";
  victim.ip = "10.1.0.7";
  victim.ip_be = Ipv4Be("10.1.0.7");
  o.pods = {victim};
  o.services = {Svc("trap", "10.1.0.7"), Svc("web", "10.96.0.10")};
  o.endpoint_slices = {Slice("trap", {{"10.1.0.1", true}}), Slice("web", {{"10.1.0.1", true}})};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].vip_be, Ipv4Be("10.96.0.10"));
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].ToString(),
            "Service shop/trap: clusterIP 10.1.0.7 is the IP of Pod shop/db-0; a Service may not "
            "take a pod's address, so it is ignored");
}

// A clusterIP belongs to one Service: a later one claiming the DNS
// service's address (on any port) is refused whole, whatever its name.
TEST(ServicePlanTest, OfTwoServicesOnOneClusterIpTheOlderKeepsIt) {
  model::Objects o;
  model::Service dns = Svc("zz-dns", "10.96.0.10", 53, model::Protocol::kUdp);
  dns.created = 1'700'000'000;
  model::Service trap = Svc("aa-trap", "10.96.0.10", 8080);
  trap.created = 1'700'000'600;
  model::Service undated = Svc("ab-undated", "10.96.0.10", 53, model::Protocol::kUdp);
  o.services = {trap, undated, dns};
  o.endpoint_slices = {Slice("zz-dns", {{"10.1.0.53", true}}, 53),
                       Slice("aa-trap", {{"10.1.0.66", true}}, 8080)};
  o.endpoint_slices[0].ports[0].protocol = model::Protocol::kUdp;
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].service, "shop/zz-dns");
  EXPECT_EQ(p.entries[0].port, 53);
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_EQ(p.problems[0].ToString(),
            "Service shop/aa-trap: clusterIP 10.96.0.10 is already the address of Service "
            "shop/zz-dns, which is older; it is ignored");
  EXPECT_EQ(p.problems[1].ToString(),
            "Service shop/ab-undated: clusterIP 10.96.0.10 is already the address of Service "
            "shop/zz-dns, which is older; it is ignored");
  // Without creation times, the first by namespace and name keeps it.
  dns.created.reset();
  trap.created.reset();
  o.services = {dns, trap};
  p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].service, "shop/aa-trap");
}

// One namespace's Services cannot fill the shared maps: past its share a
// Service is refused whole; the older ones keep theirs, and other
// namespaces are untouched.
TEST(ServicePlanTest, ANamespaceOverItsShareOfTheServiceMapsLosesItsNewestServices) {
  model::Objects o;
  for (int i = 0; i < 4; ++i) {
    model::Service s = Svc(absl::StrCat("svc-", i), absl::StrCat("10.96.1.", i + 1).c_str());
    s.created = 1'700'000'000 + (3 - i);  // svc-3 is the oldest, svc-0 the newest
    s.ports.push_back(
        {.name = "b", .port = 81, .protocol = model::Protocol::kTcp, .target_port = 8080});
    o.services.push_back(s);
  }
  model::Service other = Svc("web", "10.96.2.1");
  other.namespace_ = "elsewhere";
  o.services.push_back(other);
  // Budget: 5 entries per namespace, each Service has 2: two fit.
  Plan p = MakePlan(o, {.entries = 5, .slots = 1000});
  std::set<std::string> kept;
  for (const auto& e : p.entries) kept.insert(e.service);
  EXPECT_THAT(kept, ::testing::ElementsAre("elsewhere/web", "shop/svc-2", "shop/svc-3"));
  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_EQ(p.problems[0].ToString(),
            "Service shop/svc-1: its 2 port entries and 0 slots would take namespace shop over "
            "its share of the service maps (5 entries, 1000 slots: "
            "--service-entries-per-namespace, --service-slots-per-namespace; in use 4 and 0); "
            "it is ignored");
  // Slots: a table of 6 backends takes 6 slot entries (4 fit inline).
  model::Objects big;
  big.services = {Svc("big", "10.96.3.1")};
  std::vector<std::pair<const char*, bool>> eps = {{"10.1.0.1", true}, {"10.1.0.2", true},
                                                   {"10.1.0.3", true}, {"10.1.0.4", true},
                                                   {"10.1.0.5", true}, {"10.1.0.6", true}};
  big.endpoint_slices = {Slice("big", eps)};
  EXPECT_EQ(MakePlan(big, {.entries = 10, .slots = 6}).entries.size(), 1u);
  Plan refused = MakePlan(big, {.entries = 10, .slots = 5});
  EXPECT_TRUE(refused.entries.empty());
  ASSERT_EQ(refused.problems.size(), 1u);
  EXPECT_THAT(refused.problems[0].reason, ::testing::HasSubstr("1 port entries and 6 slots"));
}

TEST(ServicePlanTest, NoReadyBackendIsAnEmptyTableAndHeadlessServicesAreLeftOut) {
  model::Objects o;
  o.services = {Svc("web", "10.96.0.10"), Svc("dns", "10.96.0.53", 53, model::Protocol::kUdp)};
  model::Service headless = Svc("db", "10.96.0.20");
  headless.headless = true;
  headless.cluster_ip_be = 0;
  o.services.push_back(headless);
  o.endpoint_slices = {Slice("web", {{"10.1.0.1", false}})};
  o.endpoint_slices.push_back(Slice("dns", {{"10.1.0.53", true}}, 53));
  o.endpoint_slices.back().ports[0].protocol = model::Protocol::kUdp;
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_EQ(p.entries[0].service, "shop/web");
  EXPECT_THAT(p.entries[0].slots, IsEmpty());
  EXPECT_EQ(p.entries[1].service, "shop/dns");
  EXPECT_EQ(p.entries[1].proto, 17);
  ASSERT_EQ(p.entries[1].backends.size(), 1u);
  EXPECT_EQ(p.entries[1].backends[0].port, 53);
}

TEST(ServicePlanTest, TrafficSplitWeightsAreSharedByEachBackendsReadyEndpoints) {
  model::Objects o;
  o.services = {Svc("web", "10.96.0.10"), Svc("web-v1", "10.96.0.11"), Svc("web-v2", "10.96.0.12")};
  o.endpoint_slices = {Slice("web-v1", {{"10.1.1.1", true}, {"10.1.1.2", true}}),
                       Slice("web-v2", {{"10.1.2.1", true}})};
  model::TrafficSplit t;
  t.namespace_ = "shop";
  t.name = "canary";
  t.service = "web";
  t.backends = {{"web-v1", 80}, {"web-v2", 20}};
  o.traffic_splits = {t};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 3u);
  const ServiceEntry& root = p.entries[0];
  EXPECT_EQ(root.service, "shop/web");
  EXPECT_EQ(root.split, "shop/canary");
  ASSERT_EQ(root.slots.size(), static_cast<size_t>(SHUNT_SPLIT_SLOTS));
  auto shares = Shares(root);
  EXPECT_EQ(shares[Ipv4Be("10.1.1.1")], 400);
  EXPECT_EQ(shares[Ipv4Be("10.1.1.2")], 400);
  EXPECT_EQ(shares[Ipv4Be("10.1.2.1")], 200);

  // A backend with no ready endpoint: its share goes to the others.
  o.endpoint_slices[1].endpoints[0].ready = false;
  p = MakePlan(o);
  shares = Shares(p.entries[0]);
  EXPECT_EQ(shares[Ipv4Be("10.1.1.1")], 500);
  EXPECT_EQ(shares[Ipv4Be("10.1.1.2")], 500);
  // Weight 0 sends nothing.
  o.endpoint_slices[1].endpoints[0].ready = true;
  o.traffic_splits[0].backends = {{"web-v1", 0}, {"web-v2", 100}};
  p = MakePlan(o);
  shares = Shares(p.entries[0]);
  EXPECT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[Ipv4Be("10.1.2.1")], 1000);
}

TEST(ServicePlanTest, SplitProblemsAreNamed) {
  model::Objects o;
  o.services = {Svc("web", "10.96.0.10"), Svc("web-v1", "10.96.0.11", 81)};
  o.endpoint_slices = {Slice("web-v1", {{"10.1.1.1", true}})};
  model::TrafficSplit t;
  t.namespace_ = "shop";
  t.name = "canary";
  t.service = "web";
  t.backends = {{"web-v1", 50}, {"web-v9", 50}};
  model::TrafficSplit orphan = t;
  orphan.name = "orphan";
  orphan.service = "nope";
  model::TrafficSplit ab = t;
  ab.name = "ab";
  ab.service = "web-v1";
  ab.matches = {{"HTTPRouteGroup", "beta"}};
  o.traffic_splits = {t, orphan, ab};
  Plan p = MakePlan(o);
  std::vector<std::string> reasons;
  for (const auto& pr : p.problems) reasons.push_back(pr.ToString());
  EXPECT_THAT(reasons, ElementsAre("TrafficSplit shop/orphan: root service 'nope' does not exist",
                                   "TrafficSplit shop/ab: matches: HTTPRouteGroup 'beta' does not "
                                   "exist in namespace shop; no request matches it",
                                   "TrafficSplit shop/canary: backend service 'web-v1' has no port "
                                   "80 like the root; its weight "
                                   "goes to the others",
                                   "TrafficSplit shop/canary: backend service 'web-v9' does not "
                                   "exist; its weight goes to the "
                                   "others",
                                   "TrafficSplit shop/ab: backend service 'web-v9' does not "
                                   "exist; its weight goes to the "
                                   "others"));
  EXPECT_THAT(p.entries[0].slots, IsEmpty()) << "no backend left: refused, not sent elsewhere";
}

// Services the L7 layer balances per request (SHUNT_SVC_F_L7): those with
// shunt.dev/ annotations (TCP ports only), and roots of a TrafficSplit with
// matches, whose L4 table keeps the root's own endpoints (non-meshed
// clients, SMI: requests that do not match go to the root service).
TEST(ServicePlanL7Test, AnAnnotatedServiceIsBalancedPerRequestOnItsTcpPortsOnly) {
  model::Objects o;
  model::Service web = Svc("web", "10.96.0.10");
  web.ports.push_back(
      {.name = "dns", .port = 53, .protocol = model::Protocol::kUdp, .target_port = 53});
  web.annotations = {{"shunt.dev/timeout", "2s"}, {"shunt.dev/retries", "3"}};
  o.services = {web, Svc("plain", "10.96.0.11")};
  o.endpoint_slices = {Slice("web", {{"10.1.1.1", true}, {"10.1.1.2", true}}),
                       Slice("plain", {{"10.1.2.1", true}})};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_THAT(p.problems, IsEmpty());
  const ServiceEntry& udp = p.entries[0];  // sorted by address, then port
  const ServiceEntry& tcp = p.entries[1];
  ASSERT_EQ(udp.port, 53);
  ASSERT_EQ(tcp.port, 80);
  EXPECT_FALSE(udp.l7);
  EXPECT_TRUE(tcp.l7);
  EXPECT_EQ(tcp.l7_settings.timeout_ms, 2000);
  EXPECT_EQ(tcp.l7_settings.retries, 3);
  EXPECT_EQ(tcp.backends.size(), 2u);
  EXPECT_THAT(tcp.weights, ElementsAre(1, 1));
  EXPECT_THAT(tcp.l7_split_backends, IsEmpty());
  EXPECT_FALSE(p.entries[2].l7) << "no annotation: the kernel alone";
}

TEST(ServicePlanL7Test, ASplitWithMatchesIsPerRequestAndTheKernelKeepsTheRootsOwnEndpoints) {
  model::Objects o;
  o.services = {Svc("web", "10.96.0.10"), Svc("web-v1", "10.96.0.11"), Svc("web-v2", "10.96.0.12")};
  o.endpoint_slices = {Slice("web", {{"10.1.1.1", true}, {"10.1.2.1", true}}),
                       Slice("web-v1", {{"10.1.1.1", true}}),
                       Slice("web-v2", {{"10.1.2.1", true}})};
  model::HttpRouteGroup beta;
  beta.namespace_ = "shop";
  beta.name = "beta-users";
  o.http_route_groups = {beta};
  model::TrafficSplit t;
  t.namespace_ = "shop";
  t.name = "ab";
  t.service = "web";
  t.backends = {{"web-v1", 90}, {"web-v2", 10}};
  t.matches = {{"HTTPRouteGroup", "beta-users"}};
  o.traffic_splits = {t};
  Plan p = MakePlan(o);
  EXPECT_THAT(p.problems, IsEmpty());
  const ServiceEntry& root = p.entries[0];
  ASSERT_EQ(root.service, "shop/web");
  EXPECT_TRUE(root.l7);
  EXPECT_EQ(root.split, "shop/ab");
  EXPECT_EQ(root.lb, SHUNT_LB_P2C_EWMA) << "at L4 the root is a plain service";
  ASSERT_EQ(root.backends.size(), 2u);
  EXPECT_EQ(root.backends[0].service, "shop/web");
  EXPECT_THAT(root.l7_split_groups, ElementsAre("beta-users"));
  ASSERT_EQ(root.l7_split_backends.size(), 2u);
  EXPECT_EQ(root.l7_split_backends[0].service, "shop/web-v1");
  EXPECT_EQ(root.l7_split_backends[1].service, "shop/web-v2");
  EXPECT_THAT(root.l7_split_weights, ElementsAre(90000000u, 10000000u));
  EXPECT_FALSE(p.entries[1].l7);
}

// The balancer a Service asks for (kBalancerAnnotation). Without a
// TrafficSplit every ready backend gets exactly one slot: P2C draws two
// distinct slots, so a backend with more slots would be drawn more often
// and its latency score would matter less.

TEST(ServicePlanBalancerTest, NoAnnotationAndP2cEwmaBothMeanP2cEwmaWithOneSlotPerBackend) {
  model::Objects o;
  model::Service plain = Svc("web", "10.96.0.10");
  model::Service asked = Svc("api", "10.96.0.11");
  asked.annotations[kBalancerAnnotation] = "p2c-ewma";
  asked.annotations["unrelated.example.com/x"] = "random";  // only our key counts
  o.services = {plain, asked};
  o.endpoint_slices = {Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", true}, {"10.1.0.3", true}}),
                       Slice("api", {{"10.1.1.1", true}, {"10.1.1.2", true}})};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 2u);
  EXPECT_EQ(p.entries[0].service, "shop/web");
  EXPECT_EQ(p.entries[0].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_EQ(p.entries[0].split, "");
  EXPECT_THAT(p.entries[0].slots, ElementsAre(0, 1, 2));
  EXPECT_EQ(p.entries[1].service, "shop/api");
  EXPECT_EQ(p.entries[1].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_THAT(p.entries[1].slots, ElementsAre(0, 1));
  EXPECT_THAT(p.problems, IsEmpty());
}

TEST(ServicePlanBalancerTest, RandomAnnotationMeansRandomWithOneSlotPerBackend) {
  model::Objects o;
  model::Service svc = Svc("web", "10.96.0.10");
  svc.annotations[kBalancerAnnotation] = "random";
  o.services = {svc};
  o.endpoint_slices = {Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", false}, {"10.1.0.3", true}})};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  EXPECT_EQ(p.entries[0].lb, SHUNT_LB_RANDOM);
  ASSERT_EQ(p.entries[0].backends.size(), 2u);  // the unready one is not a backend
  EXPECT_THAT(p.entries[0].slots, ElementsAre(0, 1));
  EXPECT_THAT(p.problems, IsEmpty());
}

// A typo must be heard about, and must not turn latency-aware balancing off.
TEST(ServicePlanBalancerTest, UnknownAnnotationValueIsAProblemOnThatServiceAndP2cEwmaApplies) {
  model::Objects o;
  model::Service typo = Svc("web", "10.96.0.10");
  typo.annotations[kBalancerAnnotation] = "round-robin";
  model::Service upper = Svc("api", "10.96.0.11");
  upper.annotations[kBalancerAnnotation] = "Random";  // values are exact, not case-folded
  model::Service fine = Svc("db", "10.96.0.12");
  fine.annotations[kBalancerAnnotation] = "random";
  o.services = {typo, upper, fine};
  o.endpoint_slices = {Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", true}}),
                       Slice("api", {{"10.1.1.1", true}}), Slice("db", {{"10.1.2.1", true}})};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 3u);
  EXPECT_EQ(p.entries[0].service, "shop/web");
  EXPECT_EQ(p.entries[0].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_THAT(p.entries[0].slots, ElementsAre(0, 1));
  EXPECT_EQ(p.entries[1].service, "shop/api");
  EXPECT_EQ(p.entries[1].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_EQ(p.entries[2].service, "shop/db");
  EXPECT_EQ(p.entries[2].lb, SHUNT_LB_RANDOM);

  ASSERT_EQ(p.problems.size(), 2u);
  EXPECT_EQ(p.problems[0].ref.kind, "Service");
  EXPECT_EQ(p.problems[0].ref.namespace_, "shop");
  EXPECT_EQ(p.problems[0].ref.name, "web");
  EXPECT_EQ(p.problems[0].reason,
            "metadata.annotations.balancer.shunt.dev/algorithm: 'round-robin' is not p2c-ewma or "
            "random; using p2c-ewma");
  EXPECT_EQ(p.problems[1].ToString(),
            "Service shop/api: metadata.annotations.balancer.shunt.dev/algorithm: 'Random' is not "
            "p2c-ewma or random; using p2c-ewma");
}

// A split's weights live in the slot table, and only a uniformly random
// slot honours them: P2C over weighted slots would skew the shares.
TEST(ServicePlanBalancerTest, TrafficSplitRootIsRandomOverWeightedSlotsEvenWhenAnnotatedP2cEwma) {
  model::Objects o;
  model::Service root = Svc("web", "10.96.0.10");
  root.annotations[kBalancerAnnotation] = "p2c-ewma";
  o.services = {root, Svc("web-v1", "10.96.0.11"), Svc("web-v2", "10.96.0.12")};
  o.endpoint_slices = {Slice("web", {{"10.1.0.1", true}}),
                       Slice("web-v1", {{"10.1.1.1", true}, {"10.1.1.2", true}}),
                       Slice("web-v2", {{"10.1.2.1", true}})};
  model::TrafficSplit t;
  t.namespace_ = "shop";
  t.name = "canary";
  t.service = "web";
  t.backends = {{"web-v1", 50}, {"web-v2", 50}};
  o.traffic_splits = {t};
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 3u);
  const ServiceEntry& e = p.entries[0];
  EXPECT_EQ(e.service, "shop/web");
  EXPECT_EQ(e.split, "shop/canary");
  EXPECT_EQ(e.lb, SHUNT_LB_RANDOM);
  ASSERT_EQ(e.slots.size(), static_cast<size_t>(SHUNT_SPLIT_SLOTS));
  auto shares = Shares(e);
  EXPECT_EQ(shares.size(), 3u);  // the root's own endpoint is not a split backend
  EXPECT_EQ(shares[Ipv4Be("10.1.1.1")], 250);
  EXPECT_EQ(shares[Ipv4Be("10.1.1.2")], 250);
  EXPECT_EQ(shares[Ipv4Be("10.1.2.1")], 500);
  // The split's backends, addressed directly, are not split: the default.
  EXPECT_EQ(p.entries[1].service, "shop/web-v1");
  EXPECT_EQ(p.entries[1].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_THAT(p.entries[1].slots, ElementsAre(0, 1));
  EXPECT_EQ(p.entries[2].service, "shop/web-v2");
  EXPECT_EQ(p.entries[2].lb, SHUNT_LB_P2C_EWMA);
  EXPECT_THAT(p.problems, IsEmpty());
}

// The annotation is on the Service, so it holds for each of its ports; an
// unknown value is reported once per Service, not once per port.
TEST(ServicePlanBalancerTest, AnnotationAppliesToEveryPortOfAMultiPortService) {
  model::Service svc = Svc("web", "10.96.0.10");
  svc.ports.push_back(
      {.name = "grpc", .port = 9090, .protocol = model::Protocol::kTcp, .target_port = 9091});
  svc.ports.push_back(
      {.name = "dns", .port = 53, .protocol = model::Protocol::kUdp, .target_port = 5353});
  model::EndpointSlice slice = Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", true}});
  slice.ports.push_back({.name = "grpc", .port = 9091});
  slice.ports.push_back({.name = "dns", .port = 5353, .protocol = model::Protocol::kUdp});

  for (const auto& [value, lb, problems] :
       {std::tuple<std::string, uint8_t, size_t>{"random", SHUNT_LB_RANDOM, 0},
        std::tuple<std::string, uint8_t, size_t>{"p2c-ewma", SHUNT_LB_P2C_EWMA, 0},
        std::tuple<std::string, uint8_t, size_t>{"fastest", SHUNT_LB_P2C_EWMA, 1}}) {
    SCOPED_TRACE(value);
    model::Objects o;
    o.services = {svc};
    o.services[0].annotations[kBalancerAnnotation] = value;
    o.endpoint_slices = {slice};
    Plan p = MakePlan(o);
    ASSERT_EQ(p.entries.size(), 3u);  // sorted by port: 53, 80, 9090
    EXPECT_EQ(p.entries[0].port, 53);
    EXPECT_EQ(p.entries[0].proto, 17);
    EXPECT_EQ(p.entries[1].port, 80);
    EXPECT_EQ(p.entries[2].port, 9090);
    for (const ServiceEntry& e : p.entries) {
      EXPECT_EQ(e.lb, lb) << e.port_name;
      ASSERT_EQ(e.backends.size(), 2u) << e.port_name;
      EXPECT_THAT(e.slots, ElementsAre(0, 1)) << e.port_name;
    }
    EXPECT_EQ(p.entries[0].backends[0].port, 5353);
    EXPECT_EQ(p.entries[2].backends[0].port, 9091);
    EXPECT_EQ(p.problems.size(), problems);
  }
}

}  // namespace
}  // namespace shunt::services
