// The service plan (agent/services/service_plan.h): ready backends per
// ClusterIP and port, TrafficSplit weights as slot tables, and the problems
// a user must hear about.
#include <arpa/inet.h>

#include <map>

#include "agent/services/service_plan.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/service.h"

namespace shunt::services {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

uint32_t Ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}

model::Service Svc(const std::string& name, const char* vip, uint16_t port = 80,
                   model::Protocol proto = model::Protocol::kTcp) {
  model::Service s;
  s.namespace_ = "shop";
  s.name = name;
  s.cluster_ip = vip;
  s.cluster_ip_be = Ip(vip);
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
    ep.addresses_be = {Ip(ip)};
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
  source::Objects o;
  o.services = {Svc("web", "10.96.0.10")};
  auto slice = Slice("web", {{"10.1.0.1", true}, {"10.1.0.2", false}, {"10.1.0.3", true}});
  slice.endpoints[2].terminating = true;  // ready but terminating: no new connections
  o.endpoint_slices = {slice, Slice("web", {{"10.1.0.4", true}})};
  o.endpoint_slices[1].name = "web-y";
  Plan p = MakePlan(o);
  ASSERT_EQ(p.entries.size(), 1u);
  const ServiceEntry& e = p.entries[0];
  EXPECT_EQ(e.vip_be, Ip("10.96.0.10"));
  EXPECT_EQ(e.port, 80);
  ASSERT_EQ(e.backends.size(), 2u);
  EXPECT_EQ(e.backends[0].ip_be, Ip("10.1.0.1"));
  EXPECT_EQ(e.backends[0].port, 8080);
  EXPECT_EQ(e.backends[1].ip_be, Ip("10.1.0.4"));
  EXPECT_THAT(e.slots, ElementsAre(0, 1));
  EXPECT_THAT(p.problems, IsEmpty());
}

TEST(ServicePlanTest, NoReadyBackendIsAnEmptyTableAndHeadlessServicesAreLeftOut) {
  source::Objects o;
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
  source::Objects o;
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
  EXPECT_EQ(shares[Ip("10.1.1.1")], 400);
  EXPECT_EQ(shares[Ip("10.1.1.2")], 400);
  EXPECT_EQ(shares[Ip("10.1.2.1")], 200);

  // A backend with no ready endpoint: its share goes to the others.
  o.endpoint_slices[1].endpoints[0].ready = false;
  p = MakePlan(o);
  shares = Shares(p.entries[0]);
  EXPECT_EQ(shares[Ip("10.1.1.1")], 500);
  EXPECT_EQ(shares[Ip("10.1.1.2")], 500);
  // Weight 0 sends nothing.
  o.endpoint_slices[1].endpoints[0].ready = true;
  o.traffic_splits[0].backends = {{"web-v1", 0}, {"web-v2", 100}};
  p = MakePlan(o);
  shares = Shares(p.entries[0]);
  EXPECT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[Ip("10.1.2.1")], 1000);
}

TEST(ServicePlanTest, SplitProblemsAreNamed) {
  source::Objects o;
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
  EXPECT_THAT(reasons,
              ElementsAre(
                  "TrafficSplit shop/orphan: root service 'nope' does not exist",
                  "TrafficSplit shop/ab: its matches (HTTPRouteGroups) are judged per request by the L7 proxy, "
                  "which does not exist yet; the split is not applied at L4",
                  "TrafficSplit shop/canary: backend service 'web-v1' has no port 80 like the root; its weight "
                  "goes to the others",
                  "TrafficSplit shop/canary: backend service 'web-v9' does not exist; its weight goes to the "
                  "others"));
  EXPECT_THAT(p.entries[0].slots, IsEmpty()) << "no backend left: refused, not sent elsewhere";
}

}  // namespace
}  // namespace shunt::services
