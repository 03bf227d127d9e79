// TelemetryController (agent/telemetry/telemetry_controller.h) without a
// kernel (no maps, no bpffs): flows fed to its aggregator are named by the
// pods of the last snapshot and the TrafficTargets of the policy, /v1/flows
// and /v1/stat answer (and reject bad queries), and windows are read by the
// injected clock.
#include "agent/telemetry/telemetry_controller.h"

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "agent/http/router.h"
#include "agent/lib/clock.h"
#include "agent/lib/memory_map.h"
#include "agent/policy/policy_controller.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/flow.h"
#include "test/unit/ipv4_util.h"
#include "test/unit/yaml_objects.h"

namespace shunt::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr int64_t kSec = 1'000'000'000;

using test_util::Ipv4Be;

// Pod web-1 (10.0.0.1, sa web) and api-1 (10.0.0.2, sa api), and a grant
// from web to api on 8080.
constexpr char kObjects[] = R"(
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
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: api-port, namespace: demo}
spec: {matches: {ports: [8080]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: web-to-api, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: api, namespace: demo}
  sources: [{kind: ServiceAccount, name: web, namespace: demo}]
  rules: [{kind: TCPRoute, name: api-port}]
)";

class TelemetryControllerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(nullptr); }

  void Start(const policy::PolicyController* policy) {
    auto c = TelemetryController::Create({.clock = &clock_, .enabled = true, .policy = policy});
    ASSERT_TRUE(c.ok()) << c.status();
    controller_ = *std::move(c);
    api_ = {};
    metrics_ = {};
    controller_->AddRoutes(api_, metrics_);
  }

  http::Response Get(const std::string& path, std::map<std::string, std::string> query = {}) {
    bool known = false;
    const http::Route* route = api_.Find("GET", path, &known);
    EXPECT_NE(route, nullptr) << path;
    if (route == nullptr) return http::Error(404, "no route");
    return route->handler({.method = "GET", .path = path, .query = std::move(query)});
  }

  // A connection from web-1's address to api-1's on 8080 that closed now,
  // by the kernel's (monotonic) clock.
  FlowRecord Flow(uint16_t client_port) const {
    FlowRecord f{};
    f.key.client_ip4 = Ipv4Be("10.0.0.1");
    f.key.server_ip4 = Ipv4Be("10.0.0.2");
    f.key.client_port = htons(client_port);
    f.key.server_port = htons(8080);
    f.end_ns = static_cast<uint64_t>(clock_.MonotonicNs());
    f.start_ns = f.end_ns - kSec / 1000;
    f.end = SHUNT_FLOW_CLOSED;
    f.verdict = SHUNT_FLOW_ALLOWED;
    f.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_ESTABLISHED;
    return f;
  }

  // The machine has been up 1,000 s; the wall clock is in the middle of a
  // 10 s window slice.
  lib::FakeClock clock_{1000 * kSec, int64_t{1'765'000'000} * kSec + 5 * kSec};
  std::unique_ptr<TelemetryController> controller_;
  http::Router api_, metrics_;
  testing::YamlObjects objects_;
};

TEST_F(TelemetryControllerTest, StatusSaysWhatIsCollected) {
  nlohmann::json status = nlohmann::json::object();
  controller_->AddStatus(status);
  EXPECT_EQ(status, (nlohmann::json{{"telemetry",
                                     {{"enabled", true},
                                      {"flow_records", 0},
                                      {"edges", 0},
                                      {"l7_request_series_evicted", 0},
                                      {"l7_request_reports_malformed", 0}}}}));
  controller_->Plan(objects_.Publish(kObjects), true);
  controller_->flows()->Ingest(Flow(40001));
  status = nlohmann::json::object();
  controller_->AddStatus(status);
  EXPECT_EQ(status["telemetry"]["edges"], 1);
}

// The proxy's requests, as MtlsController passes them on, named by the
// pods of the last snapshot and served as /v1/stat?group=route.
TEST_F(TelemetryControllerTest, TheProxysRequestsAreServedByRoute) {
  controller_->Plan(objects_.Publish(kObjects), true);
  controller_->IngestRequests(nlohmann::json::parse(R"([{"client": "10.0.0.1",
      "server": "10.0.0.2", "port": 8080, "route": "demo/api#read",
      "classes": [0, 0, 3, 0, 0, 1], "denied": 0, "retries": 2,
      "hist": [[40, 4]], "sum_ns": 40000}, {"client": "nonsense"}])"));
  const http::Response r = Get("/v1/stat", {{"window", "60"}, {"group", "route"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json rows = nlohmann::json::parse(r.body)["rows"];
  ASSERT_EQ(rows.size(), 1u) << r.body;
  EXPECT_EQ(rows[0]["namespace"], "demo");
  EXPECT_EQ(rows[0]["route"], "demo/api#read");
  EXPECT_EQ(rows[0]["requests"], 4);
  EXPECT_EQ(rows[0]["failures"], 1);
  EXPECT_EQ(rows[0]["retries"], 2);
  nlohmann::json status = nlohmann::json::object();
  controller_->AddStatus(status);
  EXPECT_EQ(status["telemetry"]["l7_request_reports_malformed"], 1);
}

TEST_F(TelemetryControllerTest, FlowsRejectsABadAfter) {
  for (const char* after : {"x", "-1", "1.5"}) {
    const http::Response r = Get("/v1/flows", {{"after", after}});
    EXPECT_EQ(r.status, 400) << after;
    EXPECT_THAT(r.body, HasSubstr(std::string("'") + after + "' is not a sequence number"));
  }
  const http::Response r = Get("/v1/flows");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(nlohmann::json::parse(r.body), (nlohmann::json{{"closed", nlohmann::json::array()},
                                                           {"live", nlohmann::json::array()},
                                                           {"next", 0},
                                                           {"telemetry", true}}));
}

TEST_F(TelemetryControllerTest, StatNeedsAWindowAndAGroup) {
  struct Case {
    std::map<std::string, std::string> query;
    const char* error;
  };
  for (const Case& c : {
           Case{{{"group", "pod"}}, "expected window=<seconds>"},
           Case{{{"window", "10"}}, "expected window=<seconds>"},
           Case{{{"window", "ten"}, {"group", "pod"}}, "expected window=<seconds>"},
           Case{{{"window", "61"}, {"group", "pod"}}, "window 61s: expected 1s to 60s"},
           Case{{{"window", "10"}, {"group", "node"}},
                "'node': expected workload, pod, edge or route"},
       }) {
    const http::Response r = Get("/v1/stat", c.query);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_THAT(r.body, HasSubstr(c.error));
  }
  EXPECT_EQ(Get("/v1/stat", {{"window", "10"}, {"group", "pod"}}).status, 200);
}

TEST_F(TelemetryControllerTest, FlowsAreNamedByThePodsOfTheLastSnapshot) {
  // Before any snapshot the addresses are nobody's.
  controller_->flows()->Ingest(Flow(40001));
  controller_->Plan(objects_.Publish(kObjects), true);
  controller_->flows()->Ingest(Flow(40002));
  // web-1 is replaced by web-2 at the same address.
  std::string replaced = kObjects;
  replaced.replace(replaced.find("web-1"), 5, "web-2");
  controller_->Plan(objects_.Publish(replaced), true);
  controller_->flows()->Ingest(Flow(40003));

  const http::Response r = Get("/v1/flows");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json j = nlohmann::json::parse(r.body);
  ASSERT_THAT(j["closed"], SizeIs(3)) << j.dump(2);
  EXPECT_EQ(j["next"], 3);
  const nlohmann::json& unnamed = j["closed"][0];
  EXPECT_FALSE(unnamed["client"].contains("pod")) << unnamed;
  const nlohmann::json& named = j["closed"][1];
  EXPECT_EQ(named["client"]["namespace"], "demo");
  EXPECT_EQ(named["client"]["pod"], "web-1");
  EXPECT_EQ(named["server"]["pod"], "api-1");
  EXPECT_EQ(named["server"]["service_account"], "api");
  EXPECT_EQ(j["closed"][2]["client"]["pod"], "web-2");
  // ?after= pages on.
  const nlohmann::json after = nlohmann::json::parse(Get("/v1/flows", {{"after", "2"}}).body);
  ASSERT_THAT(after["closed"], SizeIs(1));
  EXPECT_EQ(after["closed"][0]["seq"], 3);
}

TEST_F(TelemetryControllerTest, FlowsNameTheTrafficTargetThatAllowedThem) {
  using PolicyMap = lib::MemoryMap<shunt_policy_key, shunt_policy_value>;
  using RuleMetaMap = lib::MemoryMap<__u32, shunt_rule_meta>;
  using IdentityMetaMap = lib::MemoryMap<__u32, shunt_identity_meta>;
  endpoints::IdentityAllocator ids, rule_ids;
  policy::PolicyController policy(
      {.mode = SHUNT_MODE_ENFORCE,
       .identities = &ids,
       .rule_ids = &rule_ids,
       .writer = std::make_unique<policy::PolicyWriter>(
           std::make_shared<PolicyMap>("policy"), std::make_shared<RuleMetaMap>("rule_meta"),
           std::make_shared<IdentityMetaMap>("identity_meta"))});
  Start(&policy);
  const auto snapshot = objects_.Publish(kObjects);
  // The agent's order: policy plans first, then telemetry.
  policy.Plan(snapshot, true);
  controller_->Plan(snapshot, true);
  FlowRecord f = Flow(40001);
  f.rule_id = rule_ids.all().at({"demo", "web-to-api"});
  controller_->flows()->Ingest(f);
  const nlohmann::json j = nlohmann::json::parse(Get("/v1/flows").body);
  ASSERT_THAT(j["closed"], SizeIs(1));
  EXPECT_EQ(j["closed"][0]["rule"], "demo/web-to-api");
}

// Windows are read by the clock the controller was given, and flows are
// dated by it too: a flow that ended a second ago is in the last 10 s.
TEST_F(TelemetryControllerTest, StatCountsRecentFlowsByTheInjectedClock) {
  controller_->Plan(objects_.Publish(kObjects), true);
  controller_->flows()->Ingest(Flow(40001));
  clock_.Advance(kSec);
  const http::Response r = Get("/v1/stat", {{"window", "10"}, {"group", "pod"}});
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json j = nlohmann::json::parse(r.body);
  ASSERT_THAT(j["rows"], SizeIs(1)) << j.dump(2);
  EXPECT_EQ(j["rows"][0]["namespace"], "demo");
  EXPECT_EQ(j["rows"][0]["name"], "api-1");
  EXPECT_EQ(j["rows"][0]["successes"], 1);
  EXPECT_EQ(j["telemetry"], true);
}

}  // namespace
}  // namespace shunt::telemetry
