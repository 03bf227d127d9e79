// EndpointsController (agent/endpoints/endpoints_controller.h) with a fake
// namespace scanner, in-memory maps and a fake clock: local pods are bound
// to the namespaces of their kubelet cgroups and written to the endpoint and
// ipcache maps, the veths whose peer is a pod's get TC guards, unresolved pods are
// reported, rescans are asked for only when something can have changed,
// and a failed scan keeps the last plan in force.
#include "agent/endpoints/endpoints_controller.h"

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/lib/clock.h"
#include "agent/lib/memory_map.h"
#include "agent/netns/namespace_scanner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/endpoint.h"
#include "test/unit/fake_endpoint_maps.h"
#include "test/unit/ipv4_util.h"
#include "test/unit/yaml_objects.h"

namespace shunt::endpoints {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using TcMap = lib::MemoryMap<__u32, shunt_tc_endpoint>;

constexpr uint64_t kOwnCookie = 1;

using test_util::Ipv4Be;

// The machine's pod sandboxes as the test sets them; counts its probes.
class FakeScanner : public netns::NamespaceScanner {
 public:
  std::map<std::string, pid_t> SandboxPids() override {
    std::map<std::string, pid_t> out;
    for (const auto& [uid, sb] : sandboxes) out[uid] = sb.pid;
    return out;
  }
  absl::StatusOr<std::map<std::string, netns::PodSandbox>> Sandboxes(
      const std::set<std::string>& uids) override {
    ++probes;
    if (!probe_status.ok()) return probe_status;
    std::map<std::string, netns::PodSandbox> out;
    for (const std::string& uid : uids) {
      auto it = sandboxes.find(uid);
      out[uid] = it != sandboxes.end()
                     ? it->second
                     : netns::PodSandbox{.problem = "no kubelet cgroup for uid " + uid + " (yet)"};
    }
    return out;
  }
  absl::StatusOr<netns::LinkInfo> Link(int ifindex) override {
    auto it = links.find(ifindex);
    if (it == links.end()) return absl::NotFoundError("no such interface");
    return it->second;
  }

  // The sandbox of pod `uid`: a namespace holding `ip`, whose node-side
  // veth is `host_ifindex`.
  void AddPodSandbox(const std::string& uid, uint64_t inode, uint64_t cookie, const char* ip,
                     int host_ifindex) {
    const pid_t pid = static_cast<pid_t>(1000 + cookie);
    sandboxes[uid] = {.cgroup = "/cg/pod" + uid,
                      .pid = pid,
                      .netns = {.inode = inode,
                                .path = "/proc/" + std::to_string(pid) + "/ns/net",
                                .cookie = cookie,
                                .ipv4_be = {Ipv4Be(ip)}},
                      .host_ifindexes = {host_ifindex}};
  }

  std::map<std::string, netns::PodSandbox> sandboxes;
  std::map<int, netns::LinkInfo> links;
  absl::Status probe_status;
  int probes = 0;
};

// Pods of node-a (web-1, api-1) and of node-b (remote-1).
constexpr char kPods[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo, uid: u-web-1}
spec: {nodeName: node-a, serviceAccountName: web}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: demo, uid: u-api-1}
spec: {nodeName: node-a, serviceAccountName: api}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: remote-1, namespace: demo, uid: u-remote-1}
spec: {nodeName: node-b, serviceAccountName: web}
status: {podIP: 10.0.1.1}
)";

// One more pod of node-a, whose namespace the scanner may not have yet.
constexpr char kLatePod[] = R"(
---
apiVersion: v1
kind: Pod
metadata: {name: late-1, namespace: demo, uid: u-late-1}
spec: {nodeName: node-a, serviceAccountName: late}
status: {podIP: 10.0.0.3}
)";

class EndpointsControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // web-1's veth has its peer in the pod; api-1's link reports none (the
    // agent does not run in the node's namespace for it): it is not guarded.
    scanner_.AddPodSandbox("u-web-1", 4026532001, 11, "10.0.0.1", 21);
    scanner_.AddPodSandbox("u-api-1", 4026532002, 12, "10.0.0.2", 22);
    scanner_.links[21] = {.ifindex = 21, .name = "veth-web", .link = 2, .peer_in_other_ns = true};
    scanner_.links[22] = {.ifindex = 22, .name = "veth-api", .link = 2, .peer_in_other_ns = false};
    Start();
  }

  void Start() {
    auto maps = std::make_unique<testing::FakeEndpointMaps>();
    maps_ = maps.get();
    auto c = EndpointsController::Create({.node = "node-a",
                                          .own_netns_cookie = kOwnCookie,
                                          .clock = &clock_,
                                          .identities = &ids_,
                                          .maps = std::move(maps),
                                          .tc_endpoints = tc_map_,
                                          .sync_tc =
                                              [this](const std::set<int>& ifindexes) {
                                                tc_syncs_.push_back(ifindexes);
                                                return tc_report_;
                                              },
                                          .scanner = &scanner_,
                                          .full_probe_ms = 30'000});
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = *std::move(c);
  }

  size_t Reconcile(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed = true) {
    controller_->Plan(snapshot, changed);
    return controller_->Apply();
  }

  nlohmann::json Status() const {
    nlohmann::json s = nlohmann::json::object();
    controller_->AddStatus(s);
    return s;
  }

  // local_pods of the status as {pod: problem}.
  std::map<std::string, std::string> Problems() const {
    std::map<std::string, std::string> out;
    const nlohmann::json status = Status();
    for (const auto& p : status["local_pods"]) out[p["pod"]] = p["problem"];
    return out;
  }

  uint32_t Identity(const std::string& sa) const { return ids_.all().at({"demo", sa}); }

  lib::FakeClock clock_{int64_t{5000} * 1'000'000'000, int64_t{1'765'000'000} * 1'000'000'000};
  IdentityAllocator ids_;
  FakeScanner scanner_;
  testing::FakeEndpointMaps* maps_ = nullptr;  // owned by controller_
  std::shared_ptr<TcMap> tc_map_ = std::make_shared<TcMap>("shunt_tc_endpoints_v1");
  std::vector<std::set<int>> tc_syncs_;
  datapath::TcSyncReport tc_report_;
  std::unique_ptr<EndpointsController> controller_;
  testing::YamlObjects objects_;
};

TEST_F(EndpointsControllerTest, LocalPodsReachTheMapsAndTheirVethsAreGuarded) {
  EXPECT_EQ(Reconcile(objects_.Publish(kPods)), 0u);

  ASSERT_THAT(maps_->endpoints, SizeIs(2));
  const EndpointEntry& web = maps_->endpoints.at(11);
  EXPECT_EQ(web.ep.ip4, Ipv4Be("10.0.0.1"));
  EXPECT_EQ(web.ep.identity, Identity("web"));
  EXPECT_STREQ(web.meta.name, "web-1");
  EXPECT_EQ(web.meta.netns_inode, 4026532001u);
  EXPECT_EQ(maps_->endpoints.at(12).ep.identity, Identity("api"));

  // Every pod is in the ipcache; only local ones with a namespace are LOCAL.
  ASSERT_THAT(maps_->ipcache, SizeIs(3));
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.0.1")).flags, SHUNT_IPC_F_LOCAL);
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.0.2")).flags, SHUNT_IPC_F_LOCAL);
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.1.1")).flags, 0u);
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.1.1")).identity, Identity("web"));

  // Only the veth whose peer is in the pod's namespace is guarded.
  EXPECT_THAT(tc_syncs_, ElementsAre(std::set<int>{21}));
  ASSERT_THAT(tc_map_->entries(), SizeIs(1));
  EXPECT_EQ(tc_map_->entries().begin()->first, 21u);
  EXPECT_EQ(tc_map_->entries().begin()->second.ip4, Ipv4Be("10.0.0.1"));
  EXPECT_EQ(tc_map_->entries().begin()->second.identity, Identity("web"));

  const nlohmann::json pods = Status()["local_pods"];
  ASSERT_THAT(pods, SizeIs(2)) << "remote pods are not local";
  EXPECT_EQ(pods[0]["pod"], "demo/web-1");
  EXPECT_EQ(pods[0]["netns_cookie"], 11);
  EXPECT_EQ(pods[0]["tc_guarded"], true);
  EXPECT_EQ(pods[0]["problem"], "");
  EXPECT_EQ(pods[1]["tc_guarded"], false);
}

TEST_F(EndpointsControllerTest, AGonePodLeavesTheMapsAndLosesItsGuard) {
  ASSERT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  const std::string web_gone = R"(
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: demo, uid: u-api-1}
spec: {nodeName: node-a, serviceAccountName: api}
status: {podIP: 10.0.0.2}
)";
  EXPECT_EQ(Reconcile(objects_.Publish(web_gone)), 0u);
  EXPECT_THAT(maps_->endpoints, ElementsAre(Pair(12, ::testing::_)));
  EXPECT_THAT(maps_->ipcache, ElementsAre(Pair(Ipv4Be("10.0.0.2"), ::testing::_)));
  EXPECT_THAT(tc_syncs_, ElementsAre(std::set<int>{21}, std::set<int>{}));
  EXPECT_THAT(tc_map_->entries(), IsEmpty());
}

TEST_F(EndpointsControllerTest, APodInNoNamespaceIsReportedNotMeshed) {
  EXPECT_EQ(Reconcile(objects_.Publish(kPods + std::string(kLatePod))), 0u);
  EXPECT_EQ(Problems(), (std::map<std::string, std::string>{
                            {"demo/web-1", ""},
                            {"demo/api-1", ""},
                            {"demo/late-1", "no kubelet cgroup for uid u-late-1 (yet)"}}));
  std::vector<std::string> warnings;
  controller_->AddWarnings(warnings);
  EXPECT_THAT(warnings,
              ElementsAre("pod demo/late-1: not meshed: no kubelet cgroup for uid u-late-1 (yet)"));
  EXPECT_THAT(maps_->endpoints, SizeIs(2));
  // Its peers still know who it is; they do not treat it as local.
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.0.3")).flags, 0u);
  EXPECT_EQ(maps_->ipcache.at(Ipv4Be("10.0.0.3")).identity, Identity("late"));
  std::string metrics;
  controller_->AddMetrics(metrics);
  EXPECT_THAT(metrics, HasSubstr("shunt_local_pods{state=\"not_meshed\"} 1\n"));
}

TEST_F(EndpointsControllerTest, WantsReconcileOnlyWhenSomethingCanHaveChanged) {
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs())) << "never probed";
  const auto snapshot = objects_.Publish(kPods + std::string(kLatePod));
  ASSERT_EQ(Reconcile(snapshot), 0u);
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs())) << "late-1 is unresolved";

  // Its sandbox appears: the next reconcile resolves it, and then there
  // is nothing to look for.
  scanner_.AddPodSandbox("u-late-1", 4026532003, 13, "10.0.0.3", 23);
  ASSERT_EQ(Reconcile(snapshot, /*changed=*/false), 0u);
  EXPECT_EQ(Problems().at("demo/late-1"), "");
  EXPECT_FALSE(controller_->WantsReconcile(clock_.MonotonicMs()));

  // A sandbox comes or goes, or is replaced (a new pause process).
  scanner_.AddPodSandbox("u-other", 4026532099, 99, "10.0.0.99", 0);
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs()));
  ASSERT_EQ(Reconcile(snapshot, false), 0u);
  EXPECT_FALSE(controller_->WantsReconcile(clock_.MonotonicMs()));
  scanner_.sandboxes["u-late-1"].pid = 4242;
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs()));
  ASSERT_EQ(Reconcile(snapshot, false), 0u);
  EXPECT_FALSE(controller_->WantsReconcile(clock_.MonotonicMs()));
  scanner_.sandboxes.erase("u-other");
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs()));
  ASSERT_EQ(Reconcile(snapshot, false), 0u);

  // Addresses can move without namespaces changing: look at least every
  // full_probe_ms.
  clock_.Advance(int64_t{30'000} * 1'000'000);
  EXPECT_FALSE(controller_->WantsReconcile(clock_.MonotonicMs()));
  clock_.Advance(1'000'000);
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs()));
}

TEST_F(EndpointsControllerTest, AFailedScanKeepsTheLastPlanInForce) {
  ASSERT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  const auto endpoints_before = maps_->endpoints.size();
  maps_->calls.clear();

  // The scan fails while web-1's sandbox is gone: nothing is withdrawn.
  scanner_.probe_status = absl::PermissionDeniedError("setns: injected");
  scanner_.sandboxes.erase("u-web-1");
  EXPECT_EQ(Reconcile(objects_.Publish(kPods)), 1u) << "the failed scan is an error";
  EXPECT_THAT(maps_->calls, IsEmpty());
  EXPECT_EQ(maps_->endpoints.size(), endpoints_before);
  EXPECT_THAT(tc_syncs_, SizeIs(1)) << "the guards are left alone";
  EXPECT_EQ(Problems().at("demo/web-1"), "");
  std::string metrics;
  controller_->AddMetrics(metrics);
  EXPECT_THAT(metrics, HasSubstr("shunt_netns_probe_errors_total 1\n"));
  EXPECT_TRUE(controller_->WantsReconcile(clock_.MonotonicMs())) << "the change is still unseen";

  // The scan works again: now web-1 goes.
  scanner_.probe_status = absl::OkStatus();
  EXPECT_EQ(Reconcile(objects_.Publish(kPods), false), 0u);
  EXPECT_THAT(maps_->endpoints, ElementsAre(Pair(12, ::testing::_)));
  EXPECT_EQ(Problems().at("demo/web-1"), "no kubelet cgroup for uid u-web-1 (yet)");
}

TEST_F(EndpointsControllerTest, AGuardStaysWhileItsSandboxLivesWhateverThePodDoes) {
  const auto snapshot = objects_.Publish(kPods);
  ASSERT_EQ(Reconcile(snapshot), 0u);
  ASSERT_THAT(tc_map_->entries(), ElementsAre(Pair(21u, ::testing::_)));
  // web-1 moves its end of the veth into a namespace of its own: from the
  // node, the link's peer is no longer in the pod's namespace. The guard
  // stays on it.
  scanner_.sandboxes["u-web-1"].host_ifindexes.clear();
  ASSERT_EQ(Reconcile(snapshot, false), 0u);
  EXPECT_THAT(tc_map_->entries(), ElementsAre(Pair(21u, ::testing::_)));
  EXPECT_THAT(tc_syncs_.back(), ElementsAre(21));
  EXPECT_EQ(Status()["local_pods"][0]["host_ifindexes"], nlohmann::json::array({21}));
  // The link is gone (the sandbox ended): so is the guard.
  scanner_.links.erase(21);
  ASSERT_EQ(Reconcile(snapshot, false), 0u);
  EXPECT_THAT(tc_map_->entries(), IsEmpty());
}

TEST_F(EndpointsControllerTest, TcErrorsAreCountedAndShown) {
  tc_report_.errors = {"tc: attach to ifindex 21: injected"};
  EXPECT_EQ(Reconcile(objects_.Publish(kPods)), 1u);
  EXPECT_EQ(Status()["tc_errors"], nlohmann::json::array({"tc: attach to ifindex 21: injected"}));
}

TEST_F(EndpointsControllerTest, AnEarlierAgentsGuardsAreTakenOver) {
  // A guard of an earlier agent on a veth no pod has any more.
  ASSERT_TRUE(
      tc_map_->Update(77, shunt_tc_endpoint{.ip4 = Ipv4Be("10.0.0.7"), .identity = 300}).ok());
  Start();
  ASSERT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  EXPECT_THAT(tc_map_->entries(), ElementsAre(Pair(21u, ::testing::_)));
}

TEST_F(EndpointsControllerTest, CreateFailsWhenTheGuardsCannotBeRead) {
  tc_map_->FailReads(true);
  auto c = EndpointsController::Create({.node = "node-a",
                                        .clock = &clock_,
                                        .identities = &ids_,
                                        .maps = std::make_unique<testing::FakeEndpointMaps>(),
                                        .tc_endpoints = tc_map_,
                                        .scanner = &scanner_});
  EXPECT_EQ(c.status().code(), absl::StatusCode::kPermissionDenied) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("shunt_tc_endpoints_v1"));
}

}  // namespace
}  // namespace shunt::endpoints
