#include "telemetry_controller.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/counters.h"
#include "agent/lib/pin_layout.h"
#include "agent/telemetry/flow_view.h"
#include "agent/telemetry/peer_directory.h"
#include "agent/telemetry/prometheus.h"
#include "agent/telemetry/stat.h"
#include "agent/telemetry/traffic_metrics.h"
#include "shunt/abi/pins.h"

namespace shunt::telemetry {

absl::StatusOr<std::unique_ptr<TelemetryController>> TelemetryController::Create(Deps deps) {
  std::unique_ptr<TelemetryController> c(new TelemetryController(deps));
  // Finished flows are drained on a thread of their own (flow_collector.h);
  // with telemetry off the kernel keeps no records, so there is nothing to drain.
  if (deps.enabled && deps.maps != nullptr) {
    auto collector = FlowCollector::Start(deps.maps->flow_events_fd(), &c->flows_,
                                          deps.maps->flows_fd(), deps.maps->flow_hists_fd());
    if (!collector.ok()) return collector.status();
    c->collector_ = *std::move(collector);
  }
  return c;
}

TelemetryController::~TelemetryController() { collector_.reset(); }

void TelemetryController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot,
                               bool changed) {
  snapshot_ = snapshot;
  if (changed) {
    auto directory = PeerDirectory::Build(snapshot->pods);
    flows_.SetDirectory(directory);
    requests_.SetDirectory(std::move(directory));
  }
  if (d_.policy != nullptr && d_.policy->policy().rules_stamp != rule_names_stamp_) {
    flows_.SetRuleNames(
        std::make_shared<const std::map<uint32_t, std::string>>(d_.policy->policy().rules));
    rule_names_stamp_ = d_.policy->policy().rules_stamp;
  }
}

void TelemetryController::Tick(int64_t) {
  // Runs after policy's Tick drained the ring, so `shuntctl flows` sees a
  // refused connection as soon as `drops` does.
  const policy::DenyLog* denials = d_.policy ? d_.policy->denials() : nullptr;
  if (denials == nullptr) return;
  for (const auto& d : denials->Since(denials_fed_, denials->total())) {
    // Flows are IPv4 connections (an IPv6 denial stays in drops only).
    if (!d.ipv6) flows_.IngestDenial(d.event, d.wall_time_ns);
    denials_fed_ = d.seq;
  }
}

void TelemetryController::IngestRequests(const nlohmann::json& requests) {
  requests_.Ingest(requests, d_.clock->RealtimeNs());
}

void TelemetryController::AddRoutes(http::Router& api, http::Router& metrics) {
  api.Add("GET", "/v1/flows", [this](const http::Request& r) { return FlowsJson(r); });
  api.Add("GET", "/v1/stat", [this](const http::Request& r) { return StatJson(r); });
  metrics.AddPrefix("GET", "/apis/metrics.smi-spec.io/", [this](const http::Request& r) {
    auto a = ServeTrafficMetrics(r.path, r.raw_query, flows_, d_.clock->RealtimeNs(), &requests_);
    return http::Response{a.status, a.content_type, a.body};
  });
}

// GET /v1/flows?after=SEQ: finished flows newer than SEQ, and every live
// one from the kernel's map.
http::Response TelemetryController::FlowsJson(const http::Request& r) const {
  uint64_t after = 0;
  auto it = r.query.find("after");
  if (it != r.query.end() && !it->second.empty() && !absl::SimpleAtoi(it->second, &after))
    return http::Error(400, absl::StrCat("flows: '", it->second, "' is not a sequence number"));
  nlohmann::json closed = nlohmann::json::array(), live = nlohmann::json::array();
  uint64_t next = after;
  for (const auto& f : flows_.Since(after, 5000)) {
    closed.push_back(FlowJson(f, d_.trust_domain));
    next = f.seq;
  }
  if (d_.maps != nullptr) {
    if (auto entries = d_.maps->flows().Entries(); entries.ok()) {
      LiveHists hists;
      if (auto h = d_.maps->flow_hists().Entries(); h.ok())
        for (const auto& [k, v] : *h) hists[FlowInstance{k, v.start_ns}] = v;
      for (const auto& [k, f] : *entries) {
        if (f.flags & SHUNT_FLOW_F_L7_UPSTREAM) continue;  // the client's record has it
        live.push_back(FlowJson(flows_.Describe(WithHist(f, hists)), d_.trust_domain));
      }
    }
  }
  return http::Json(
      {{"closed", closed}, {"live", live}, {"next", next}, {"telemetry", d_.enabled}});
}

// GET /v1/stat?window=SECONDS&group=workload|pod|edge
http::Response TelemetryController::StatJson(const http::Request& r) const {
  int window_s = 0;
  auto w = r.query.find("window");
  auto g = r.query.find("group");
  if (w == r.query.end() || g == r.query.end() || !absl::SimpleAtoi(w->second, &window_s))
    return http::Error(400, "stat: expected window=<seconds> and group=<workload|pod|edge|route>");
  auto j = telemetry::StatJson(flows_, d_.clock->RealtimeNs(), window_s, g->second, &requests_);
  if (!j.ok()) return http::Error(400, absl::StrCat("stat: ", j.status().message()));
  (*j)["telemetry"] = d_.enabled;
  return http::Json(*j);
}

void TelemetryController::AddStatus(nlohmann::json& status) const {
  status["telemetry"] = {{"enabled", d_.enabled},
                         {"flow_records", collector_ ? collector_->records() : 0},
                         {"edges", flows_.totals().edges},
                         {"l7_request_series_evicted", requests_.evicted()},
                         {"l7_request_reports_malformed", requests_.malformed()}};
}

void TelemetryController::AddMetrics(std::string& out) const {
  AgentHealth h;
  if (!d_.bpffs_dir.empty()) {
    lib::PinLayout layout(d_.bpffs_dir);
    for (const auto& m : lib::PinnedMapList()) {
      auto fd = lib::OpenPin(layout.Map(m.pin_name), /*read_only=*/true);
      if (!fd.ok()) continue;
      if (auto f = lib::DescribeMap(fd->get()); f.ok())
        h.maps.push_back({m.pin_name, f->entries, f->max_entries});
    }
    if (auto fd = lib::OpenPin(layout.Map(SHUNT_MAP_COUNTERS), true); fd.ok()) {
      if (auto c = lib::ReadCounters(fd->get()); c.ok()) {
        for (int i = 0; i < SHUNT_CTR_MAX; ++i)
          h.datapath_counters.emplace_back(lib::CounterName(i), (*c)[i]);
        h.flow_records_lost = (*c)[SHUNT_CTR_FLOW_EVENTS_LOST];
      }
    }
    if (auto fd = lib::OpenPin(layout.Map(SHUNT_MAP_TCP_REASONS), true); fd.ok()) {
      if (auto r = lib::ReadTcpReasons(fd->get()); r.ok())
        for (int i = SHUNT_TCP_NONE + 1; i < SHUNT_TCP_REASON_MAX; ++i)
          h.tcp_reasons.emplace_back(lib::TcpReasonName(i), (*r)[i]);
    }
  }
  if (collector_) {
    h.flow_records = collector_->records();
    h.flow_records_malformed = collector_->malformed();
  }
  h.aggregator = flows_.totals();
  out += RenderPrometheus(flows_.Edges(), h);
}

}  // namespace shunt::telemetry
