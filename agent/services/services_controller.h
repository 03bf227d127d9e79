// Services: Services, EndpointSlices and TrafficSplits become the kernel's
// service tables (connect()-time balancing), and telemetry's latency
// samples become the latency-aware balancer's scores. Serves /v1/services
// and /v1/lb/explain on the local API; owns `status` key services.
#pragma once

#include <functional>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "agent/controller.h"
#include "agent/lib/clock.h"
#include "agent/services/latency_scorer.h"
#include "agent/services/lb_score_writer.h"
#include "agent/services/service_plan.h"
#include "agent/services/service_writer.h"
#include "agent/telemetry/flow_aggregator.h"

namespace shunt::services {

class ServicesController : public agent::Controller {
 public:
  struct Deps {
    const lib::Clock* clock;
    std::unique_ptr<ServiceWriter> writer;     // Load()ed
    std::unique_ptr<LbScoreWriter> lb_writer;  // Load()ed
    int lb_trace_fd = -1;                      // the kernel's recent choices; -1: none
    // Telemetry's measurements of each backend (thread-safe).
    telemetry::FlowAggregator* flows;
    // How many times telemetry has looked at the live flows so far (the
    // open-connection snapshot is as fresh as that).
    std::function<uint64_t()> live_scans;
    int64_t balancer_period_ms = 100;
    NamespaceBudget namespace_budget;  // --service-{entries,slots}-per-namespace
    // The node proxy's per-request balancing, as it last reported it
    // ([{"thread", "leaves": [{"service", "port", "leaf", "endpoints",
    // "choices"}]}]), for the entries the L7 layer balances. Unset: none.
    std::function<nlohmann::json()> l7_balancers;
  };
  explicit ServicesController(Deps deps) : d_(std::move(deps)) {}

  std::string_view name() const override { return "services"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override;
  void Tick(int64_t now_ms) override;
  void AddRoutes(http::Router& api, http::Router& metrics) override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;
  void AddWarnings(std::vector<std::string>& lines) const override;

  const services::Plan& plan() const { return plan_; }
  const LatencyScorer& scorer() const { return scorer_; }

 private:
  // Feeds what telemetry measured since the last call into the scorer and
  // writes the scores that changed.
  void UpdateBalancer();
  // services_api.cc: the local API's answers.
  http::Response ServicesJson() const;
  http::Response LbExplainJson(const http::Request& r) const;
  nlohmann::json PerRequest(const ServiceEntry& e) const;
  void AddLbFigures(const BackendAddr& a, int64_t now_ns, nlohmann::json& j) const;

  Deps d_;
  std::shared_ptr<const model::Snapshot> snapshot_;
  services::Plan plan_;
  lib::DiffReport last_apply_;
  uint64_t written_total_ = 0, deleted_total_ = 0;  // since start
  LatencyScorer scorer_{LatencyScorer::Options{.floor_ns = 100'000}};
  lib::DiffReport last_lb_write_;
  absl::flat_hash_map<BackendAddr, double> open_avg_;  // open connections, averaged over looks
  uint64_t open_scans_ = 0;                            // the live look they are from
  int64_t next_balance_ms_ = 0;
};

}  // namespace shunt::services
