// Telemetry: the kernel's flow records, folded into golden metrics per
// edge. Drains finished flows on a thread of its own (FlowCollector), takes
// the policy's denials, and serves /v1/flows and /v1/stat on the local API
// and /metrics' edge families and the SMI TrafficMetrics API on the metrics
// listener. Owns `status` key telemetry.
#pragma once

#include <memory>
#include <string>

#include "agent/controller.h"
#include "agent/lib/clock.h"
#include "agent/lib/pinned_maps.h"
#include "agent/policy/policy_controller.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_collector.h"
#include "agent/telemetry/request_windows.h"

namespace shunt::telemetry {

class TelemetryController : public agent::Controller {
 public:
  struct Deps {
    const lib::Clock* clock;
    bool enabled = true;                    // flow records in the kernel
    const lib::PinnedMaps* maps = nullptr;  // live flows; nullptr: none (tests)
    std::string bpffs_dir;                  // map levels and counters, by their pins; "": none
    // Its denials count as refused flows; its rule names label them.
    const policy::PolicyController* policy = nullptr;
    std::string trust_domain = "cluster.local";  // mTLS flows' peer_identity
  };
  // Starts the collector thread when enabled and `maps` are given.
  static absl::StatusOr<std::unique_ptr<TelemetryController>> Create(Deps deps);
  ~TelemetryController() override;

  std::string_view name() const override { return "telemetry"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override { return 0; }
  void Tick(int64_t now_ms) override;
  void AddRoutes(http::Router& api, http::Router& metrics) override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;

  FlowAggregator* flows() { return &flows_; }
  // What the node proxy's L7 layer reports each second: the requests that
  // finished since its last report (RequestMetrics::TakeRecent's
  // "requests"), dated now.
  void IngestRequests(const nlohmann::json& requests);
  uint64_t live_scans() const { return collector_ ? collector_->live_scans() : 0; }

 private:
  // The aggregator dates the kernel's records by the same clock the
  // windows of /v1/stat and the TrafficMetrics API are read by.
  explicit TelemetryController(Deps deps) : d_(deps), flows_({.clock = deps.clock}) {}
  http::Response FlowsJson(const http::Request& r) const;
  http::Response StatJson(const http::Request& r) const;

  Deps d_;
  FlowAggregator flows_;
  RequestWindows requests_;
  std::unique_ptr<FlowCollector> collector_;  // after flows_: stops before it goes
  uint64_t rule_names_stamp_ = 0;
  uint64_t denials_fed_ = 0;  // last denial handed to flows_
  std::shared_ptr<const model::Snapshot> snapshot_;
};

}  // namespace shunt::telemetry
