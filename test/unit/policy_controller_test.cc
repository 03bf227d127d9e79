// PolicyController (agent/policy/policy_controller.h) over in-memory maps:
// a snapshot's TrafficTargets reach the policy map as differences, failed
// writes are counted and shown, and the local API's policy routes answer
// for the pods of the snapshot.
#include "agent/policy/policy_controller.h"

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/http/router.h"
#include "agent/lib/memory_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/policy.h"
#include "test/unit/yaml_objects.h"

namespace shunt::policy {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using PolicyMap = lib::MemoryMap<shunt_policy_key, shunt_policy_value>;
using RuleMetaMap = lib::MemoryMap<__u32, shunt_rule_meta>;
using IdentityMetaMap = lib::MemoryMap<__u32, shunt_identity_meta>;

constexpr char kPods[] = R"(
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo}
spec: {nodeName: node-a, serviceAccountName: web}
status: {podIP: 10.0.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: api-1, namespace: demo}
spec: {nodeName: node-a, serviceAccountName: api}
status: {podIP: 10.0.0.2}
---
apiVersion: v1
kind: Pod
metadata: {name: other-1, namespace: demo}
spec: {nodeName: node-a, serviceAccountName: other}
status: {podIP: 10.0.0.3}
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: api-port, namespace: demo}
spec: {matches: {ports: [8080]}}
)";

constexpr char kWebToApi[] = R"(
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: web-to-api, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: api, namespace: demo}
  sources: [{kind: ServiceAccount, name: web, namespace: demo}]
  rules: [{kind: TCPRoute, name: api-port}]
)";

class PolicyControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(SHUNT_MODE_ENFORCE); }

  void Start(uint32_t mode) {
    auto writer = std::make_unique<PolicyWriter>(policy_map_, rule_meta_, identity_meta_);
    ASSERT_TRUE(writer->Load().ok());
    controller_ = std::make_unique<PolicyController>(PolicyController::Deps{
        .mode = mode, .identities = &ids_, .rule_ids = &rule_ids_, .writer = std::move(writer)});
    api_ = {};
    controller_->AddRoutes(api_, metrics_);
  }

  // One turn of the agent's loop for this controller: both phases.
  size_t Reconcile(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed = true) {
    controller_->Plan(snapshot, changed);
    return controller_->Apply();
  }

  http::Response Call(const std::string& method, const std::string& path,
                      const std::string& body = "", std::map<std::string, std::string> query = {}) {
    bool known = false;
    const http::Route* route = api_.Find(method, path, &known);
    EXPECT_NE(route, nullptr) << method << " " << path;
    if (route == nullptr) return http::Error(404, "no route");
    return route->handler(
        {.method = method, .path = path, .query = std::move(query), .body = body});
  }

  nlohmann::json Status() const {
    nlohmann::json s = nlohmann::json::object();
    controller_->AddStatus(s);
    return s;
  }

  // The policy map's key for src -> dst on a TCP port, by service account.
  shunt_policy_key Key(const std::string& src_sa, const std::string& dst_sa, uint16_t port) {
    shunt_policy_key k{};
    k.src_identity = ids_.all().at({"demo", src_sa});
    k.dst_identity = ids_.all().at({"demo", dst_sa});
    k.dport = htons(port);
    k.proto = IPPROTO_TCP;
    return k;
  }

  endpoints::IdentityAllocator ids_, rule_ids_;
  std::shared_ptr<PolicyMap> policy_map_ = std::make_shared<PolicyMap>("shunt_policy_v1");
  std::shared_ptr<RuleMetaMap> rule_meta_ = std::make_shared<RuleMetaMap>("shunt_rule_meta_v1");
  std::shared_ptr<IdentityMetaMap> identity_meta_ =
      std::make_shared<IdentityMetaMap>("shunt_identity_meta_v1");
  std::unique_ptr<PolicyController> controller_;
  http::Router api_, metrics_;
  testing::YamlObjects objects_;
};

TEST_F(PolicyControllerTest, ATrafficTargetBecomesItsPolicyEntry) {
  EXPECT_EQ(Reconcile(objects_.Publish(std::string(kPods) + kWebToApi)), 0u);
  const shunt_policy_key key = Key("web", "api", 8080);
  ASSERT_THAT(policy_map_->entries(), SizeIs(1));
  const auto& [k, v] = *policy_map_->entries().begin();
  EXPECT_EQ(std::memcmp(&k, &key, sizeof(key)), 0);
  EXPECT_EQ(v.verdict, SHUNT_VERDICT_ALLOW);
  // The entry names its TrafficTarget, and the name is in the map shuntctl reads.
  auto meta = rule_meta_->Lookup(v.rule_id);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_STREQ(meta->namespace_, "demo");
  EXPECT_STREQ(meta->name, "web-to-api");
}

TEST_F(PolicyControllerTest, ReapplyingTheSamePolicyWritesNothing) {
  const auto snapshot = objects_.Publish(std::string(kPods) + kWebToApi);
  ASSERT_EQ(Reconcile(snapshot), 0u);
  ASSERT_THAT(policy_map_->journal(), SizeIs(1));
  policy_map_->ClearJournal();
  rule_meta_->ClearJournal();
  identity_meta_->ClearJournal();
  // The same snapshot again (a rescan), and a new one with the same objects.
  EXPECT_EQ(Reconcile(snapshot, /*changed=*/false), 0u);
  EXPECT_EQ(Reconcile(objects_.Publish(std::string(kPods) + kWebToApi)), 0u);
  EXPECT_THAT(policy_map_->journal(), IsEmpty());
  EXPECT_THAT(rule_meta_->journal(), IsEmpty());
  EXPECT_THAT(identity_meta_->journal(), IsEmpty());
  EXPECT_THAT(policy_map_->entries(), SizeIs(1));
}

TEST_F(PolicyControllerTest, RemovingTheTrafficTargetDeletesItsEntries) {
  ASSERT_EQ(Reconcile(objects_.Publish(std::string(kPods) + kWebToApi)), 0u);
  const shunt_policy_key key = Key("web", "api", 8080);
  policy_map_->ClearJournal();
  EXPECT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  EXPECT_THAT(policy_map_->entries(), IsEmpty());
  ASSERT_THAT(policy_map_->journal(), SizeIs(1));
  EXPECT_FALSE(policy_map_->journal()[0].update);
  EXPECT_EQ(std::memcmp(&policy_map_->journal()[0].key, &key, sizeof(key)), 0);
  EXPECT_THAT(rule_meta_->entries(), IsEmpty()) << "the name of a rule no entry uses goes too";
  EXPECT_EQ(Status()["policy"]["traffic_targets"], 0);
}

TEST_F(PolicyControllerTest, CheckAnswersForThePodsOfTheSnapshot) {
  ASSERT_EQ(Reconcile(objects_.Publish(std::string(kPods) + kWebToApi)), 0u);
  http::Response r =
      Call("POST", "/v1/policy/check", R"({"from":"demo/web-1","to":"demo/api-1","port":8080})");
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["verdict"], "allow");
  EXPECT_EQ(j["decided_by"], "TrafficTarget demo/web-to-api");
  EXPECT_EQ(j["mode"], "enforce");

  // No grant from other's service account, nor on another port.
  for (const char* body :
       {R"({"from":"demo/other-1","to":"demo/api-1","port":8080})",
        R"({"from":"demo/web-1","to":"demo/api-1","port":9090})",
        R"({"from":"demo/web-1","to":"demo/api-1","port":8080,"proto":"udp"})"}) {
    r = Call("POST", "/v1/policy/check", body);
    ASSERT_EQ(r.status, 200) << r.body;
    j = nlohmann::json::parse(r.body);
    EXPECT_EQ(j["verdict"], "deny") << body;
    EXPECT_THAT(j["effect"].get<std::string>(), HasSubstr("EPERM")) << body;
  }

  r = Call("POST", "/v1/policy/check", R"({"from":"demo/nope","to":"demo/api-1","port":8080})");
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("pod demo/nope is not in the config"));
}

TEST_F(PolicyControllerTest, CheckInPermissiveModeDeniesNothing) {
  Start(SHUNT_MODE_PERMISSIVE);
  ASSERT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  http::Response r =
      Call("POST", "/v1/policy/check", R"({"from":"demo/web-1","to":"demo/api-1","port":8080})");
  ASSERT_EQ(r.status, 200) << r.body;
  nlohmann::json j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["verdict"], "deny");
  EXPECT_EQ(j["effect"], "allowed, counted as a would-be denial (permissive mode)");
  EXPECT_EQ(Status()["mode"], "permissive");
}

TEST_F(PolicyControllerTest, CheckRejectsBadBodiesNamingTheField) {
  // Before any snapshot there is nothing to check against.
  http::Response r =
      Call("POST", "/v1/policy/check", R"({"from":"demo/web-1","to":"demo/api-1","port":8080})");
  EXPECT_EQ(r.status, 503) << r.body;

  ASSERT_EQ(Reconcile(objects_.Publish(kPods)), 0u);
  struct Case {
    const char* body;
    const char* error;
  };
  for (const Case& c : {
           Case{R"({"from":"demo/web-1","to":"demo/api-1","port":8080,"proto":6})", "--proto"},
           Case{R"({"from":"demo/web-1","to":"demo/api-1","port":8080,"proto":"sctp"})",
                "--proto 'sctp'"},
           Case{R"({"to":"demo/api-1","port":8080})", "--from"},
           Case{R"({"from":"demo/web-1","port":8080})", "--to"},
           Case{R"({"from":"demo/web-1","to":"demo/api-1","port":0})", "--port"},
           Case{R"({"from":"demo/web-1","to":"demo/api-1"})", "--port"},
           Case{"not json", "expected a JSON object"},
       }) {
    r = Call("POST", "/v1/policy/check", c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_THAT(nlohmann::json::parse(r.body)["error"].get<std::string>(), HasSubstr(c.error))
        << c.body;
  }
}

TEST_F(PolicyControllerTest, DropsRejectsABadAfter) {
  http::Response r = Call("GET", "/v1/drops", "", {{"after", "x"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(r.body, HasSubstr("'x' is not a sequence number"));
  r = Call("GET", "/v1/drops", "", {{"after", "-1"}});
  EXPECT_EQ(r.status, 400) << r.body;
  // Without a denial log there are simply no events.
  r = Call("GET", "/v1/drops", "", {{"after", "7"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body),
            (nlohmann::json{{"events", nlohmann::json::array()}, {"next", 7}, {"total", 0}}));
}

TEST_F(PolicyControllerTest, StatusReportsModePolicyAndDenials) {
  ASSERT_EQ(Reconcile(objects_.Publish(std::string(kPods) + kWebToApi)), 0u);
  const nlohmann::json s = Status();
  EXPECT_EQ(s["mode"], "enforce");
  EXPECT_EQ(s["denials_seen"], 0);
  EXPECT_EQ(s["policy"]["traffic_targets"], 1);
  EXPECT_EQ(s["policy"]["entries"], 1);
  EXPECT_EQ(s["policy"]["l7_targets"], 0);
  EXPECT_EQ(s["policy"]["problems"], nlohmann::json::array());
  // The entry, its rule's name and the names of its two identities.
  EXPECT_EQ(s["policy"]["last_apply"]["written"], 4);
  EXPECT_EQ(s["policy"]["last_apply"]["errors"], nlohmann::json::array());
  std::string metrics;
  controller_->AddMetrics(metrics);
  EXPECT_THAT(metrics, HasSubstr("\nshunt_policy_entries 1\n"));
}

TEST_F(PolicyControllerTest, AFailedWriteIsCountedShownAndRepaired) {
  policy_map_->FailWhen([](bool update, const shunt_policy_key&) { return update; });
  const auto snapshot = objects_.Publish(std::string(kPods) + kWebToApi);
  EXPECT_EQ(Reconcile(snapshot), 1u);
  EXPECT_THAT(policy_map_->entries(), IsEmpty());
  const nlohmann::json errors = Status()["policy"]["last_apply"]["errors"];
  ASSERT_EQ(errors.size(), 1u) << errors;
  EXPECT_THAT(errors[0].get<std::string>(), HasSubstr("shunt_policy_v1"));

  // The map works again: the next reconcile, with nothing changed, repairs it.
  policy_map_->FailWhen(nullptr);
  EXPECT_EQ(Reconcile(snapshot, /*changed=*/false), 0u);
  EXPECT_THAT(policy_map_->entries(), SizeIs(1));
  EXPECT_EQ(Status()["policy"]["last_apply"]["errors"], nlohmann::json::array());
}

TEST_F(PolicyControllerTest, ATargetThatGrantsNothingIsAProblemAndAWarning) {
  const std::string dangling = R"(
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: to-nowhere, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: api, namespace: demo}
  sources: [{kind: ServiceAccount, name: web, namespace: demo}]
  rules: [{kind: TCPRoute, name: missing}]
)";
  ASSERT_EQ(Reconcile(objects_.Publish(kPods + dangling)), 0u);
  EXPECT_THAT(policy_map_->entries(), IsEmpty());
  const nlohmann::json problems = Status()["policy"]["problems"];
  ASSERT_EQ(problems.size(), 1u) << problems;
  EXPECT_EQ(problems[0]["object"], "TrafficTarget demo/to-nowhere");
  std::vector<std::string> warnings;
  controller_->AddWarnings(warnings);
  ASSERT_THAT(warnings, SizeIs(1));
  EXPECT_THAT(warnings[0], HasSubstr("TCPRoute 'missing' does not exist"));
}

}  // namespace
}  // namespace shunt::policy
