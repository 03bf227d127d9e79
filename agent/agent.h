// The node agent: one event loop that watches the config directory, finds
// local pods' namespaces, keeps the BPF maps equal to the plan, and answers
// the local API. Signals end the loop; the data path stays in the kernel.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/agent_config.h"
#include "agent/api/api_server.h"
#include "agent/api/http_server.h"
#include "agent/datapath/datapath.h"
#include "agent/endpoints/endpoint_maps.h"
#include "agent/endpoints/endpoint_plan.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/lib/unique_fd.h"
#include "agent/policy/compiler.h"
#include "agent/policy/deny_log.h"
#include "agent/policy/policy_writer.h"
#include "agent/services/latency_scorer.h"
#include "agent/services/lb_score_writer.h"
#include "agent/services/service_plan.h"
#include "agent/services/service_writer.h"
#include "agent/model/object_store.h"
#include "agent/source/source.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_collector.h"
#include "agent/telemetry/prometheus.h"
#include "nlohmann/json.hpp"

namespace shunt::agent {

class Agent {
 public:
  // Installs the data path and reconciles once. Errors name what is wrong.
  static absl::StatusOr<std::unique_ptr<Agent>> Create(const AgentConfig& config);

  // Runs until SIGTERM or SIGINT.
  absl::Status Run();

 private:
  explicit Agent(AgentConfig config) : config_(std::move(config)) {}
  void Reconcile(bool reload_config);
  void SyncTcGuards();
  void LogSnapshotIfChanged();
  std::string HandleApi(const std::string& request);
  std::string Answer(const std::string& request);
  std::string StatusJson() const;
  std::string DropsJson(const std::string& arg) const;
  std::string PolicyCheckJson(const std::string& arg) const;
  std::string FlowsJson(const std::string& arg) const;
  std::string StatJson(const std::string& arg) const;
  std::string ServicesJson() const;
  std::string LbExplainJson(const std::string& arg) const;
  void AddLbFigures(const services::BackendAddr& a, int64_t now, nlohmann::json& j) const;
  void UpdateBalancer();
  api::HttpResponse ServeHttp(const std::string& path, const std::string& query) const;
  telemetry::AgentHealth Health() const;
  void ConsumeDenials();

  AgentConfig config_;
  std::unique_ptr<source::Source> source_;
  model::ObjectStore store_;
  std::unique_ptr<datapath::Datapath> datapath_;
  std::unique_ptr<endpoints::BpfEndpointMaps> maps_;
  std::optional<api::ApiServer> api_;
  lib::UniqueFd signal_fd_;
  endpoints::IdentityAllocator identities_;
  endpoints::IdentityAllocator rule_ids_;
  policy::PolicyCompiler compiler_{identities_, rule_ids_};  // after both allocators
  std::unique_ptr<policy::PolicyWriter> policy_writer_;
  std::unique_ptr<policy::DenyLog> deny_log_;
  std::unique_ptr<services::ServiceWriter> service_writer_;
  services::Plan service_plan_;
  lib::DiffReport last_service_apply_;
  // Latency-aware balancing: telemetry's samples -> scores -> the kernel.
  services::LatencyScorer lb_scorer_{services::LatencyScorer::Options{.floor_ns = 100'000}};
  std::unique_ptr<services::LbScoreWriter> lb_writer_;
  lib::DiffReport last_lb_write_;
  absl::flat_hash_map<services::BackendAddr, double>
      lb_open_avg_;             // open connections, averaged over looks
  uint64_t lb_open_scans_ = 0;  // the live look they are from
  int lb_trace_fd_ = -1;        // owned by datapath_'s maps
  uint64_t denials_fed_ = 0;    // last denial handed to flows_
  telemetry::FlowAggregator flows_{{}};
  std::unique_ptr<telemetry::FlowCollector> collector_;  // after flows_: stops before it goes
  uint64_t rule_names_stamp_ = 0;
  std::unique_ptr<api::HttpServer> http_;  // /metrics and TrafficMetrics; last: it reads the rest
  lib::DiffReport last_policy_apply_;
  std::unique_ptr<lib::ShadowedMap<__u32, shunt_tc_endpoint>> tc_map_;
  std::set<int> tc_guarded_;  // ifindexes with TC guards
  std::vector<std::string> tc_errors_;
  uint64_t own_netns_cookie_ = 0;

  std::shared_ptr<const model::Snapshot> snapshot_ = store_.current();
  endpoints::Plan plan_;
  endpoints::ApplyReport last_apply_;
  std::string last_logged_;
  std::set<uint64_t> last_netns_inodes_;
  int64_t started_at_ = 0;
  int64_t last_full_probe_ = 0;
  // Read by the metrics thread too.
  std::atomic<uint64_t> reconciles_{0};
  std::atomic<uint64_t> reconcile_errors_{0};
  uint64_t api_errors_ = 0;  // requests that failed inside the agent
};

}  // namespace shunt::agent
