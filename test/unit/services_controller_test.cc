// ServicesController (agent/services/services_controller.h) over in-memory
// maps and a fake clock: a Service and its EndpointSlice reach the service
// and slot maps, latency samples reach the score map once a balancer period
// has passed, and the local API lists backends and explains (or refuses to).
#include "agent/services/services_controller.h"

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/http/router.h"
#include "agent/lib/clock.h"
#include "agent/lib/memory_map.h"
#include "agent/telemetry/flow_aggregator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/flow.h"
#include "shunt/abi/service.h"
#include "test/unit/ipv4_util.h"
#include "test/unit/yaml_objects.h"

namespace shunt::services::controller_test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using ServiceMap = lib::MemoryMap<shunt_svc_key, shunt_svc_value>;
using SlotMap = lib::MemoryMap<shunt_slot_key, shunt_backend>;
using ScoreMap = lib::MemoryMap<shunt_backend, shunt_lb_score>;

constexpr int64_t kMs = 1'000'000;

using test_util::Ipv4Be;

// "10.0.0.1:8080" for a kernel backend (port in network order).
std::string Addr(const shunt_backend& b) {
  char buf[INET_ADDRSTRLEN];
  in_addr a{.s_addr = b.ip};
  return std::string(inet_ntop(AF_INET, &a, buf, sizeof(buf))) + ":" +
         std::to_string(ntohs(b.port));
}

// demo/web at 10.96.0.10:80 -> five ready backends on 8080 (one more is not
// ready), too many for the service entry's inline slots; web-1 is a pod.
constexpr char kWeb[] = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: demo}
spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-abc12, namespace: demo, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints:
- {addresses: [10.0.0.1], conditions: {ready: true}}
- {addresses: [10.0.0.2], conditions: {ready: true}}
- {addresses: [10.0.0.3], conditions: {ready: true}}
- {addresses: [10.0.0.4], conditions: {ready: true}}
- {addresses: [10.0.0.5], conditions: {ready: true}}
- {addresses: [10.0.0.9], conditions: {ready: false}}
ports: [{name: http, port: 8080, protocol: TCP}]
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: demo}
spec: {nodeName: node-a, serviceAccountName: web}
status: {podIP: 10.0.0.1}
)";

class ServicesControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto writer = std::make_unique<ServiceWriter>(services_map_, slots_map_);
    ASSERT_TRUE(writer->Load().ok());
    auto lb_writer = std::make_unique<LbScoreWriter>(scores_map_);
    ASSERT_TRUE(lb_writer->Load().ok());
    controller_ = std::make_unique<ServicesController>(
        ServicesController::Deps{.clock = &clock_,
                                 .writer = std::move(writer),
                                 .lb_writer = std::move(lb_writer),
                                 .flows = &flows_,
                                 .balancer_period_ms = 100});
    controller_->AddRoutes(api_, metrics_);
  }

  size_t Reconcile(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed = true) {
    controller_->Plan(snapshot, changed);
    return controller_->Apply();
  }

  http::Response Get(const std::string& path, std::map<std::string, std::string> query = {}) {
    bool known = false;
    const http::Route* route = api_.Find("GET", path, &known);
    EXPECT_NE(route, nullptr) << path;
    if (route == nullptr) return http::Error(404, "no route");
    return route->handler({.method = "GET", .path = path, .query = std::move(query)});
  }

  // A finished connection to `server`:8080 that saw `responses` responses
  // of `latency_ns` each, as the kernel reports it.
  void FinishedFlow(const char* server, uint16_t client_port, int responses, uint64_t latency_ns) {
    telemetry::FlowRecord f{};
    f.key.client_ip4 = Ipv4Be("10.0.1.1");
    f.key.server_ip4 = Ipv4Be(server);
    f.key.client_port = htons(client_port);
    f.key.server_port = htons(8080);
    f.end_ns = static_cast<uint64_t>(clock_.MonotonicNs());
    f.start_ns = f.end_ns - 2 * kMs;
    f.end = SHUNT_FLOW_CLOSED;
    f.verdict = SHUNT_FLOW_ALLOWED;
    f.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_ESTABLISHED;
    for (int i = 0; i < responses; ++i) {
      ++f.rr_hist[shunt_hist_bucket(latency_ns)];
      f.rr_sum_ns += latency_ns;
      ++f.rr_count;
    }
    flows_.Ingest(f);
  }

  // The score map as {"ip:port": score}.
  std::map<std::string, uint32_t> Scores() const {
    std::map<std::string, uint32_t> out;
    for (const auto& [k, v] : scores_map_->entries()) out[Addr(k)] = v.score;
    return out;
  }

  lib::FakeClock clock_{1000 * 1000 * kMs, int64_t{1'765'000'000} * 1000 * kMs};
  telemetry::FlowAggregator flows_{{.clock = &clock_}};
  std::shared_ptr<ServiceMap> services_map_ = std::make_shared<ServiceMap>("shunt_services_v1");
  std::shared_ptr<SlotMap> slots_map_ = std::make_shared<SlotMap>("shunt_slots_v1");
  std::shared_ptr<ScoreMap> scores_map_ = std::make_shared<ScoreMap>("shunt_lb_scores_v1");
  std::unique_ptr<ServicesController> controller_;
  http::Router api_, metrics_;
  testing::YamlObjects objects_;
};

TEST_F(ServicesControllerTest, AServiceAndItsSliceBecomeAnEntryAndSlots) {
  EXPECT_EQ(Reconcile(objects_.Publish(kWeb)), 0u);
  ASSERT_THAT(services_map_->entries(), SizeIs(1));
  const auto& [key, value] = *services_map_->entries().begin();
  EXPECT_EQ(key.vip, Ipv4Be("10.96.0.10"));
  EXPECT_EQ(ntohs(key.port), 80);
  EXPECT_EQ(key.proto, IPPROTO_TCP);
  EXPECT_EQ(value.slots, 5u);
  EXPECT_NE(value.table, 0u) << "five slots do not fit inline";
  EXPECT_EQ(value.lb, SHUNT_LB_P2C_EWMA) << "the default balancer";
  std::vector<std::string> slots;
  for (const auto& [k, b] : slots_map_->entries()) {
    EXPECT_EQ(k.table, value.table);
    slots.push_back(Addr(b));
  }
  EXPECT_THAT(slots, UnorderedElementsAre("10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.3:8080",
                                          "10.0.0.4:8080", "10.0.0.5:8080"))
      << "the backend that is not ready gets no slot";

  nlohmann::json status = nlohmann::json::object();
  controller_->AddStatus(status);
  EXPECT_EQ(status["services"]["addresses"], 1);
  EXPECT_EQ(status["services"]["last_apply"]["errors"], nlohmann::json::array());

  // Nothing changed: nothing is written.
  services_map_->ClearJournal();
  slots_map_->ClearJournal();
  EXPECT_EQ(Reconcile(objects_.Publish(kWeb)), 0u);
  EXPECT_THAT(services_map_->journal(), IsEmpty());
  EXPECT_THAT(slots_map_->journal(), IsEmpty());
}

TEST_F(ServicesControllerTest, AFailedWriteIsCountedAndShown) {
  services_map_->FailWhen([](bool update, const shunt_svc_key&) { return update; });
  EXPECT_EQ(Reconcile(objects_.Publish(kWeb)), 1u);
  nlohmann::json status = nlohmann::json::object();
  controller_->AddStatus(status);
  ASSERT_THAT(status["services"]["last_apply"]["errors"], SizeIs(1));
  EXPECT_THAT(status["services"]["last_apply"]["errors"][0].get<std::string>(),
              HasSubstr("shunt_services_v1"));
  EXPECT_THAT(services_map_->entries(), IsEmpty());
}

TEST_F(ServicesControllerTest, TickWritesLatencyScoresOncePerBalancerPeriod) {
  ASSERT_EQ(Reconcile(objects_.Publish(kWeb)), 0u);
  // The first tick writes every backend, unmeasured: score 0, tried first.
  controller_->Tick(clock_.MonotonicMs());
  EXPECT_EQ(Scores(), (std::map<std::string, uint32_t>{{"10.0.0.1:8080", 0},
                                                       {"10.0.0.2:8080", 0},
                                                       {"10.0.0.3:8080", 0},
                                                       {"10.0.0.4:8080", 0},
                                                       {"10.0.0.5:8080", 0}}));
  scores_map_->ClearJournal();

  // 10.0.0.1 answers in 20 ms, 10.0.0.2 in 1 ms.
  FinishedFlow("10.0.0.1", 40001, 3, 20 * kMs);
  FinishedFlow("10.0.0.2", 40002, 3, 1 * kMs);
  clock_.Advance(50 * kMs);
  controller_->Tick(clock_.MonotonicMs());
  EXPECT_THAT(scores_map_->journal(), IsEmpty()) << "within the balancer period";

  clock_.Advance(50 * kMs);
  controller_->Tick(clock_.MonotonicMs());
  const auto scores = Scores();
  EXPECT_GT(scores.at("10.0.0.1:8080"), scores.at("10.0.0.2:8080")) << "slower scores higher";
  EXPECT_GT(scores.at("10.0.0.2:8080"), 0u);
  EXPECT_EQ(scores.at("10.0.0.3:8080"), 0u);
  EXPECT_THAT(scores_map_->journal(), SizeIs(2)) << "only the changed scores";
}

TEST_F(ServicesControllerTest, ServicesListsBackendsWithWeightsAndMeasurements) {
  ASSERT_EQ(Reconcile(objects_.Publish(kWeb)), 0u);
  FinishedFlow("10.0.0.1", 40001, 2, 5 * kMs);
  controller_->Tick(clock_.MonotonicMs());
  const http::Response r = Get("/v1/services");
  ASSERT_EQ(r.status, 200) << r.body;
  const nlohmann::json j = nlohmann::json::parse(r.body);
  ASSERT_THAT(j["services"], SizeIs(1)) << j.dump(2);
  const nlohmann::json& web = j["services"][0];
  EXPECT_EQ(web["service"], "demo/web");
  EXPECT_EQ(web["address"], "10.96.0.10:80");
  EXPECT_EQ(web["balancer"], "p2c-ewma");
  EXPECT_EQ(web["slots"], 5);
  ASSERT_THAT(web["backends"], SizeIs(5));
  std::map<std::string, nlohmann::json> by_address;
  for (const auto& b : web["backends"]) {
    EXPECT_EQ(b["weight_percent"], 20.0) << b;
    by_address[b["address"]] = b;
  }
  const nlohmann::json& first = by_address.at("10.0.0.1:8080");
  EXPECT_EQ(first["pod"], "demo/web-1");
  EXPECT_EQ(first["flows"], 1);
  EXPECT_EQ(first["live_share_percent"], 100.0);
  EXPECT_TRUE(first.contains("ewma_ms")) << first;
  EXPECT_FALSE(by_address.at("10.0.0.2:8080").contains("pod"));
  EXPECT_FALSE(by_address.at("10.0.0.2:8080").contains("ewma_ms"));
}

TEST_F(ServicesControllerTest, ExplainNamesAnUnknownService) {
  ASSERT_EQ(Reconcile(objects_.Publish(kWeb)), 0u);
  http::Response r = Get("/v1/lb/explain", {{"service", "demo/nope"}});
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("no service 'demo/nope'"));
  r = Get("/v1/lb/explain");
  EXPECT_EQ(r.status, 404);
  // A known service, but this agent keeps no trace of the kernel's choices.
  r = Get("/v1/lb/explain", {{"service", "demo/web"}});
  EXPECT_EQ(r.status, 503) << r.body;
}

}  // namespace
}  // namespace shunt::services::controller_test
