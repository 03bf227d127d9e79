// ApplyPlan: brings the endpoint and ipcache maps to a Plan by writing only
// the difference, through an in-memory EndpointMaps.
#include "agent/endpoints/endpoint_maps.h"

#include <arpa/inet.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/fake_endpoint_maps.h"
#include "test/unit/ipv4_util.h"

namespace shunt::endpoints {
namespace {

using shunt::testing::FakeEndpointMaps;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using test_util::Ipv4Be;

std::string Dotted(uint32_t be) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{.s_addr = be};
  return inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

EndpointEntry Endpoint(const std::string& ns, const std::string& name, const std::string& ip,
                       uint32_t identity, uint64_t inode = 4026531000) {
  EndpointEntry e;
  e.ep = {.ip4 = Ipv4Be(ip), .identity = identity, .flags = SHUNT_EP_F_SHORT_CIRCUIT};
  std::strncpy(e.meta.namespace_, ns.c_str(), sizeof(e.meta.namespace_) - 1);
  std::strncpy(e.meta.name, name.c_str(), sizeof(e.meta.name) - 1);
  std::strncpy(e.meta.service_account, "default", sizeof(e.meta.service_account) - 1);
  e.meta.netns_inode = inode;
  return e;
}

bool Same(const EndpointEntry& a, const EndpointEntry& b) {
  return std::memcmp(&a.ep, &b.ep, sizeof(a.ep)) == 0 &&
         std::memcmp(&a.meta, &b.meta, sizeof(a.meta)) == 0;
}

// The maps hold exactly the plan.
void ExpectMapsEqualPlan(const FakeEndpointMaps& maps, const Plan& plan) {
  ASSERT_EQ(maps.ipcache.size(), plan.ipcache.size());
  for (const auto& [ip, want] : plan.ipcache) {
    ASSERT_EQ(maps.ipcache.count(ip), 1u) << Dotted(ip);
    EXPECT_EQ(maps.ipcache.at(ip).identity, want.identity) << Dotted(ip);
    EXPECT_EQ(maps.ipcache.at(ip).flags, want.flags) << Dotted(ip);
  }
  ASSERT_EQ(maps.endpoints.size(), plan.endpoints.size());
  for (const auto& [cookie, want] : plan.endpoints) {
    ASSERT_EQ(maps.endpoints.count(cookie), 1u) << cookie;
    EXPECT_TRUE(Same(maps.endpoints.at(cookie), want)) << cookie;
  }
}

// Two local pods and one remote one.
Plan ThreePodPlan() {
  Plan plan;
  plan.ipcache[Ipv4Be("10.0.0.1")] = {.identity = 256, .flags = SHUNT_IPC_F_LOCAL};
  plan.ipcache[Ipv4Be("10.0.0.2")] = {.identity = 257, .flags = SHUNT_IPC_F_LOCAL};
  plan.ipcache[Ipv4Be("10.0.1.1")] = {.identity = 256, .flags = 0};
  plan.endpoints[11] = Endpoint("demo", "a", "10.0.0.1", 256);
  plan.endpoints[12] = Endpoint("demo", "b", "10.0.0.2", 257);
  return plan;
}

TEST(ApplyPlanTest, EmptyPlanOnEmptyMapsDoesNothing) {
  FakeEndpointMaps maps;
  ApplyReport r = ApplyPlan(Plan{}, maps);
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(r.deleted, 0);
  EXPECT_EQ(r.unchanged, 0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(maps.calls, IsEmpty());
}

TEST(ApplyPlanTest, FillsEmptyMapsEndpointsFirst) {
  FakeEndpointMaps maps;
  const Plan plan = ThreePodPlan();
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 5);
  EXPECT_EQ(r.deleted, 0);
  EXPECT_EQ(r.unchanged, 0);
  EXPECT_THAT(r.errors, IsEmpty());
  // A pod is announced as a local peer (ipcache LOCAL) only after its
  // endpoint is in. (ipcache order follows the network-order key.)
  ASSERT_THAT(maps.calls, SizeIs(5));
  EXPECT_THAT(std::vector<std::string>(maps.calls.begin(), maps.calls.begin() + 2),
              ElementsAre("put endpoint 11", "put endpoint 12"));
  EXPECT_THAT(
      std::vector<std::string>(maps.calls.begin() + 2, maps.calls.end()),
      UnorderedElementsAre("put ipcache 10.0.0.1", "put ipcache 10.0.0.2", "put ipcache 10.0.1.1"));
  ExpectMapsEqualPlan(maps, plan);
}

TEST(ApplyPlanTest, ReapplyingTheSamePlanTouchesNothing) {
  FakeEndpointMaps maps;
  const Plan plan = ThreePodPlan();
  ApplyPlan(plan, maps);
  maps.calls.clear();
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(r.deleted, 0);
  EXPECT_EQ(r.unchanged, 5);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(maps.calls, IsEmpty());
}

TEST(ApplyPlanTest, OnlyChangedEntriesAreRewrittenInPlace) {
  FakeEndpointMaps maps;
  Plan plan = ThreePodPlan();
  ApplyPlan(plan, maps);
  maps.calls.clear();

  plan.ipcache[Ipv4Be("10.0.1.1")].identity = 300;   // remote pod changed account
  plan.endpoints[12].meta.netns_inode = 4026531999;  // only the meta differs
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 2);
  EXPECT_EQ(r.unchanged, 3);
  EXPECT_EQ(r.deleted, 0);
  EXPECT_THAT(r.errors, IsEmpty());
  // Overwritten, never deleted and re-added: no window without the entry.
  EXPECT_THAT(maps.calls, ElementsAre("put endpoint 12", "put ipcache 10.0.1.1"));
  ExpectMapsEqualPlan(maps, plan);
}

TEST(ApplyPlanTest, EachFieldOfAnEntryCountsAsAChange) {
  struct Change {
    const char* description;
    void (*apply)(Plan&);
    const char* call;
  };
  const Change changes[] = {
      {"ipcache flags", [](Plan& p) { p.ipcache[Ipv4Be("10.0.0.1")].flags = 0; },
       "put ipcache 10.0.0.1"},
      {"endpoint ip", [](Plan& p) { p.endpoints[11].ep.ip4 = Ipv4Be("10.0.0.9"); },
       "put endpoint 11"},
      {"endpoint identity", [](Plan& p) { p.endpoints[11].ep.identity = 999; }, "put endpoint 11"},
      {"endpoint flags", [](Plan& p) { p.endpoints[11].ep.flags = 0; }, "put endpoint 11"},
      {"meta name", [](Plan& p) { p.endpoints[11].meta.name[0] = 'z'; }, "put endpoint 11"},
      {"meta namespace", [](Plan& p) { p.endpoints[11].meta.namespace_[0] = 'z'; },
       "put endpoint 11"},
      {"meta service account", [](Plan& p) { p.endpoints[11].meta.service_account[0] = 'z'; },
       "put endpoint 11"},
  };
  for (const Change& c : changes) {
    FakeEndpointMaps maps;
    Plan plan = ThreePodPlan();
    ApplyPlan(plan, maps);
    maps.calls.clear();
    c.apply(plan);
    ApplyReport r = ApplyPlan(plan, maps);
    EXPECT_EQ(r.written, 1) << c.description;
    EXPECT_EQ(r.unchanged, 4) << c.description;
    EXPECT_THAT(maps.calls, ElementsAre(c.call)) << c.description;
  }
}

TEST(ApplyPlanTest, StaleEntriesAreDeletedEndpointsFirst) {
  FakeEndpointMaps maps;
  Plan plan = ThreePodPlan();
  ApplyPlan(plan, maps);
  maps.calls.clear();

  // Pod b is gone; a new remote pod arrives.
  plan.endpoints.erase(12);
  plan.ipcache.erase(Ipv4Be("10.0.0.2"));
  plan.ipcache[Ipv4Be("10.0.1.2")] = {.identity = 258, .flags = 0};
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 1);
  EXPECT_EQ(r.deleted, 2);
  EXPECT_EQ(r.unchanged, 3);
  EXPECT_THAT(r.errors, IsEmpty());
  // Removal in reverse dependency order: the endpoint before its ipcache entry.
  EXPECT_THAT(maps.calls,
              ElementsAre("put ipcache 10.0.1.2", "delete endpoint 12", "delete ipcache 10.0.0.2"));
  ExpectMapsEqualPlan(maps, plan);
}

TEST(ApplyPlanTest, EmptyPlanClearsLeftoversFromAPreviousRun) {
  // A restarted agent finds pinned maps full of entries it no longer wants.
  FakeEndpointMaps maps;
  maps.ipcache[Ipv4Be("10.9.9.9")] = {.identity = 400, .flags = SHUNT_IPC_F_LOCAL};
  maps.endpoints[77] = Endpoint("old", "pod", "10.9.9.9", 400);
  ApplyReport r = ApplyPlan(Plan{}, maps);
  EXPECT_EQ(r.deleted, 2);
  EXPECT_EQ(r.written, 0);
  EXPECT_THAT(maps.calls, ElementsAre("delete endpoint 77", "delete ipcache 10.9.9.9"));
  EXPECT_THAT(maps.endpoints, IsEmpty());
  EXPECT_THAT(maps.ipcache, IsEmpty());
}

TEST(ApplyPlanTest, FullIpcacheReportsEachFailedWriteAndAppliesTheRest) {
  FakeEndpointMaps maps;
  maps.ipcache_capacity = 2;
  const Plan plan = ThreePodPlan();
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 4);  // two ipcache entries and both endpoints
  EXPECT_EQ(r.deleted, 0);
  ASSERT_THAT(r.errors, SizeIs(1));
  ASSERT_THAT(maps.ipcache, SizeIs(2));
  // The error names the one address that did not get in.
  std::string missing;
  for (const auto& [ip, e] : plan.ipcache)
    if (!maps.ipcache.count(ip)) missing = Dotted(ip);
  EXPECT_EQ(r.errors[0], absl::StrCat("ipcache ", missing, ": bpf: map ipcache is full"));
  EXPECT_THAT(maps.endpoints, SizeIs(2));
}

TEST(ApplyPlanTest, FullEndpointMapReportsThePodAndAppliesTheRest) {
  FakeEndpointMaps maps;
  maps.endpoint_capacity = 1;
  Plan plan = ThreePodPlan();
  plan.endpoints[13] = Endpoint("demo", "c", "10.0.0.3", 258);
  plan.ipcache[Ipv4Be("10.0.0.3")] = {.identity = 258, .flags = SHUNT_IPC_F_LOCAL};
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 5);  // four ipcache entries, one endpoint
  EXPECT_THAT(r.errors, ElementsAre("endpoint demo/b: bpf: map endpoints is full",
                                    "endpoint demo/c: bpf: map endpoints is full"));
  EXPECT_THAT(maps.ipcache, SizeIs(4));
  ASSERT_THAT(maps.endpoints, SizeIs(1));
  EXPECT_EQ(maps.endpoints.count(11), 1u);
  // Pods without an endpoint are not announced as local peers.
  EXPECT_EQ(maps.ipcache[Ipv4Be("10.0.0.1")].flags, SHUNT_IPC_F_LOCAL);
  EXPECT_EQ(maps.ipcache[Ipv4Be("10.0.0.2")].flags, 0u);
  EXPECT_EQ(maps.ipcache[Ipv4Be("10.0.0.3")].flags, 0u);
  EXPECT_EQ(maps.ipcache[Ipv4Be("10.0.0.3")].identity, 258u);
}

TEST(ApplyPlanTest, FullMapThatCanBeUpdatedInPlaceStillTakesChanges) {
  FakeEndpointMaps maps;
  Plan plan = ThreePodPlan();
  ApplyPlan(plan, maps);
  maps.calls.clear();
  maps.ipcache_capacity = maps.ipcache.size();
  maps.endpoint_capacity = maps.endpoints.size();
  plan.ipcache[Ipv4Be("10.0.0.1")].identity = 500;
  plan.endpoints[11].ep.identity = 500;
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 2);
  EXPECT_THAT(r.errors, IsEmpty());
  ExpectMapsEqualPlan(maps, plan);
}

TEST(ApplyPlanTest, FullMapRecoversOnTheNextApplyOnceStaleEntriesAreGone) {
  // Writes come before deletions (no window without an entry), so a map full
  // of stale entries rejects new ones this round and takes them the next.
  FakeEndpointMaps maps;
  maps.ipcache_capacity = 3;
  maps.ipcache[Ipv4Be("10.9.0.1")] = {.identity = 400, .flags = 0};
  maps.ipcache[Ipv4Be("10.9.0.2")] = {.identity = 400, .flags = 0};
  maps.ipcache[Ipv4Be("10.0.0.1")] = {.identity = 256, .flags = SHUNT_IPC_F_LOCAL};
  const Plan plan = ThreePodPlan();

  ApplyReport first = ApplyPlan(plan, maps);
  EXPECT_EQ(first.unchanged, 1);
  EXPECT_EQ(first.deleted, 2);
  EXPECT_EQ(first.written, 2);  // the two endpoints
  EXPECT_THAT(first.errors, UnorderedElementsAre("ipcache 10.0.0.2: bpf: map ipcache is full",
                                                 "ipcache 10.0.1.1: bpf: map ipcache is full"));

  ApplyReport second = ApplyPlan(plan, maps);
  EXPECT_EQ(second.written, 2);
  EXPECT_EQ(second.unchanged, 3);
  EXPECT_EQ(second.deleted, 0);
  EXPECT_THAT(second.errors, IsEmpty());
  ExpectMapsEqualPlan(maps, plan);
}

TEST(ApplyPlanTest, UnreadableMapsChangeNothing) {
  for (int which = 0; which < 2; ++which) {
    FakeEndpointMaps maps;
    maps.ipcache[Ipv4Be("10.9.9.9")] = {.identity = 400, .flags = 0};
    (which == 0 ? maps.read_ipcache_status : maps.read_endpoints_status) =
        absl::PermissionDeniedError("bpf: iterate map: Operation not permitted");
    ApplyReport r = ApplyPlan(ThreePodPlan(), maps);
    EXPECT_THAT(r.errors, ElementsAre("bpf: iterate map: Operation not permitted")) << which;
    EXPECT_EQ(r.written + r.deleted + r.unchanged, 0) << which;
    // Without knowing what is there, neither writing nor deleting is safe.
    EXPECT_THAT(maps.calls, IsEmpty()) << which;
  }
}

TEST(ApplyPlanTest, FailedDeletesAreReportedAndTheRestStillApply) {
  FakeEndpointMaps maps;
  maps.ipcache[Ipv4Be("10.9.9.9")] = {.identity = 400, .flags = 0};
  maps.endpoints[77] = Endpoint("old", "pod", "10.9.9.9", 400);
  maps.delete_status = absl::PermissionDeniedError("bpf: delete: Operation not permitted");
  const Plan plan = ThreePodPlan();
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_EQ(r.written, 5);
  EXPECT_EQ(r.deleted, 0);
  ASSERT_THAT(r.errors, SizeIs(2));
  for (const std::string& e : r.errors) EXPECT_THAT(e, HasSubstr("Operation not permitted"));
  EXPECT_THAT(maps.calls, SizeIs(7));
}

TEST(ApplyPlanTest, Ipv6AddressesAreWrittenAndRemovedLikeIpv4Ones) {
  FakeEndpointMaps maps;
  Ip6 a{}, b{};
  inet_pton(AF_INET6, "fd00::1", a.data());
  inet_pton(AF_INET6, "fd00::2", b.data());
  Plan plan;
  plan.endpoints[11] = Endpoint("demo", "web", "10.0.0.1", 256);
  std::memcpy(&plan.endpoints[11].ep.ip6, a.data(), 16);
  plan.ipcache[Ipv4Be("10.0.0.1")] = {.identity = 256, .flags = SHUNT_IPC_F_LOCAL};
  plan.ipcache6[a] = {.identity = 256, .flags = SHUNT_IPC_F_LOCAL};
  plan.ipcache6[b] = {.identity = 257, .flags = 0};
  ApplyReport r = ApplyPlan(plan, maps);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_THAT(maps.calls, ElementsAre("put endpoint 11", "put ipcache 10.0.0.1",
                                      "put ipcache6 fd00::1", "put ipcache6 fd00::2"));
  ASSERT_EQ(maps.ipcache6.size(), 2u);
  EXPECT_EQ(maps.ipcache6.at(b).identity, 257u);
  maps.calls.clear();
  plan.ipcache6.erase(b);
  r = ApplyPlan(plan, maps);
  EXPECT_THAT(maps.calls, ElementsAre("delete ipcache6 fd00::2"));
  EXPECT_EQ(r.unchanged, 3);
  // An endpoint that cannot be written is not announced as local in
  // either family.
  FakeEndpointMaps full;
  full.endpoint_capacity = 0;
  r = ApplyPlan(plan, full);
  EXPECT_EQ(full.ipcache6.at(a).flags & SHUNT_IPC_F_LOCAL, 0u);
  EXPECT_EQ(full.ipcache.at(Ipv4Be("10.0.0.1")).flags & SHUNT_IPC_F_LOCAL, 0u);
}

}  // namespace
}  // namespace shunt::endpoints
