#include "services_controller.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/fmt_absl.h"
#include "agent/model/problem_json.h"
#include "spdlog/spdlog.h"

namespace shunt::services {
void ServicesController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot,
                              bool changed) {
  snapshot_ = snapshot;
  if (changed) plan_ = MakePlan(*snapshot, d_.namespace_budget);
}

size_t ServicesController::Apply() {
  last_apply_ = d_.writer->Apply(plan_);
  written_total_ += last_apply_.written;
  deleted_total_ += last_apply_.deleted;
  for (const auto& e : last_apply_.errors) spdlog::error("service maps: {}", e);
  if (last_apply_.written || last_apply_.deleted)
    spdlog::info("services: {} entries written, {} deleted, {} services unchanged ({} in force)",
                 last_apply_.written, last_apply_.deleted, last_apply_.unchanged,
                 d_.writer->services());
  return last_apply_.errors.size();
}

void ServicesController::Tick(int64_t now_ms) {
  // Latency scores follow what telemetry measured this often: a backend
  // turning slow loses new connections within a few periods.
  if (now_ms < next_balance_ms_) return;
  next_balance_ms_ = now_ms + d_.balancer_period_ms;
  UpdateBalancer();
}

void ServicesController::UpdateBalancer() {
  const int64_t now = d_.clock->MonotonicNs();
  for (const auto& [server, s] : d_.flows->TakeServerSamples()) {
    const BackendAddr a{static_cast<uint32_t>(server >> 16),
                        static_cast<uint16_t>(server & 0xffff)};
    // Response latency is what a client waits for. A handshake's time is
    // the kernel's, not the application's: below 10 ms it is noise (and
    // made connect-only clients herd onto whichever backend was a hair
    // ahead), above it something is wrong (dropped SYNs, a full accept
    // queue), so only then does it count, as a slow sample.
    constexpr uint64_t kSlowHandshakeNs = 10'000'000;
    const uint64_t connect_mean = s.connect_count ? s.connect_sum_ns / s.connect_count : 0;
    if (s.rr_count)
      scorer_.Observe(a, now, static_cast<int64_t>(s.rr_sum_ns / s.rr_count),
                      static_cast<uint32_t>(s.rr_count), 0);
    if (connect_mean >= kSlowHandshakeNs)
      scorer_.Observe(a, now, static_cast<int64_t>(connect_mean),
                      static_cast<uint32_t>(s.connect_count), 0);
    if (s.failures) scorer_.Observe(a, now, 0, 0, s.failures);
  }
  absl::flat_hash_set<BackendAddr> keep;
  for (const auto& e : plan_.entries)
    for (const auto& b : e.backends) keep.insert({b.ip_be, b.port});
  // Open connections come from telemetry's once-a-second live look: a
  // snapshot. One connection caught open would double a backend's score
  // for a whole second (a client making one connection at a time always
  // has one open somewhere), so the load factor is the floor of an average
  // over looks: it counts connections that stay open, as outstanding
  // requests do.
  const uint64_t scans = d_.live_scans ? d_.live_scans() : 0;
  if (scans != open_scans_) {
    open_scans_ = scans;
    const auto open = d_.flows->OpenByServer();
    for (const auto& a : keep) {
      auto it = open.find(telemetry::FlowAggregator::ServerKey(a.ip_be, a.port));
      double& avg = open_avg_[a];
      avg = 0.5 * avg + 0.5 * (it == open.end() ? 0 : it->second);
    }
  }
  for (auto it = open_avg_.begin(); it != open_avg_.end();) {
    if (!keep.contains(it->first)) {
      open_avg_.erase(it++);
      continue;
    }
    scorer_.SetOutstanding(it->first, static_cast<uint32_t>(it->second));
    ++it;
  }
  scorer_.Retain(keep);
  last_lb_write_ = d_.lb_writer->Write(plan_, scorer_, now);
  for (const auto& err : last_lb_write_.errors) spdlog::warn("balancer: {}", err);
}

void ServicesController::AddRoutes(http::Router& api, http::Router&) {
  api.Add("GET", "/v1/services", [this](const http::Request&) { return ServicesJson(); });
  api.Add("GET", "/v1/lb/explain", [this](const http::Request& r) { return LbExplainJson(r); });
}

void ServicesController::AddStatus(nlohmann::json& status) const {
  status["services"] = {{"addresses", plan_.entries.size()},
                        {"problems", model::ProblemsJson(plan_.problems)},
                        {"last_apply",
                         {{"written", last_apply_.written},
                          {"written_total", written_total_},
                          {"deleted_total", deleted_total_},
                          {"deleted", last_apply_.deleted},
                          {"errors", last_apply_.errors}}}};
}

void ServicesController::AddMetrics(std::string& out) const {
  absl::StrAppend(&out,
                  "# HELP shunt_service_addresses Service addresses (VIP, port, protocol) the "
                  "kernel balances.\n"
                  "# TYPE shunt_service_addresses gauge\n",
                  "shunt_service_addresses ", plan_.entries.size(), "\n",
                  "# HELP shunt_balancer_write_errors Latency scores that failed to reach the "
                  "kernel in the last update.\n"
                  "# TYPE shunt_balancer_write_errors gauge\n",
                  "shunt_balancer_write_errors ", last_lb_write_.errors.size(), "\n",
                  "# HELP shunt_service_map_writes_total Service map entries written and "
                  "deleted since the agent started.\n"
                  "# TYPE shunt_service_map_writes_total counter\n",
                  "shunt_service_map_writes_total{op=\"written\"} ", written_total_, "\n",
                  "shunt_service_map_writes_total{op=\"deleted\"} ", deleted_total_, "\n");
}

void ServicesController::AddWarnings(std::vector<std::string>& lines) const {
  for (const auto& p : plan_.problems) lines.push_back("services: " + p.ToString());
}

}  // namespace shunt::services
