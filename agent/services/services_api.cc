// The services controller's answers on the local API: /v1/services (each
// service address with its backends: weight, live share, latency figures)
// and /v1/lb/explain (the kernel's last balancing choices, and why).
#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"
#include "agent/lib/pinned_maps.h"
#include "agent/model/problem_json.h"
#include "agent/services/services_controller.h"
#include "agent/telemetry/peer_directory.h"

namespace shunt::services {

// A latency-aware backend's figures as the kernel's choices see them.
void ServicesController::AddLbFigures(const BackendAddr& a, int64_t now, nlohmann::json& j) const {
  if (auto ewma = scorer_.EwmaNs(a, now)) j["ewma_ms"] = static_cast<double>(*ewma) / 1e6;
  j["open"] = scorer_.Outstanding(a);
  j["score"] = scorer_.Score(a, now);
}

// GET /v1/lb/explain?service=ns/name: the last balancing choices for the
// service's addresses, newest first, with both candidates and their scores.
// The node proxy's balancing of entry `e`'s requests, per proxy thread
// (each balances on its own): the leaves of this service and port.
nlohmann::json ServicesController::PerRequest(const ServiceEntry& e) const {
  nlohmann::json threads = nlohmann::json::array();
  const nlohmann::json all = d_.l7_balancers ? d_.l7_balancers() : nlohmann::json::array();
  if (!all.is_array()) return threads;
  for (const auto& t : all) {
    nlohmann::json leaves = nlohmann::json::array();
    for (const auto& l : t.value("leaves", nlohmann::json::array()))
      if (l.value("service", "") == e.service && l.value("port", 0) == e.port) leaves.push_back(l);
    if (!leaves.empty()) threads.push_back({{"thread", t.value("thread", 0)}, {"leaves", leaves}});
  }
  return threads;
}

http::Response ServicesController::LbExplainJson(const http::Request& r) const {
  auto q = r.query.find("service");
  const std::string arg = q == r.query.end() ? "" : q->second;
  std::vector<const ServiceEntry*> entries;
  for (const auto& e : plan_.entries)
    if (e.service == arg) entries.push_back(&e);
  if (entries.empty())
    return http::Error(404, absl::StrCat("lb explain: no service '", arg,
                                         "' with a cluster IP (expected namespace/name)"));
  if (d_.lb_trace_fd < 0) return http::Error(503, "lb explain: no balancing trace in this agent");
  auto trace = lib::ReadLbTrace(d_.lb_trace_fd);
  if (!trace.ok()) return http::Error(500, std::string(trace.status().message()));
  const auto directory =
      telemetry::PeerDirectory::Build(snapshot_ ? snapshot_->pods : std::vector<model::Pod>{});
  const int64_t now = d_.clock->MonotonicNs();
  auto name = [&](const shunt_backend& b) {
    nlohmann::json j = {{"address", absl::StrCat(lib::Ipv4String(b.ip), ":", ntohs(b.port))}};
    const telemetry::Peer& peer = directory->Find(b.ip);
    if (peer.known()) j["pod"] = absl::StrCat(peer.namespace_, "/", peer.pod);
    return j;
  };
  nlohmann::json out = nlohmann::json::array();
  for (const auto* e : entries) {
    const uint32_t id = d_.writer->SvcId(e->vip_be, e->port, e->proto);
    nlohmann::json choices = nlohmann::json::array();
    for (auto it = trace->rbegin(); it != trace->rend() && choices.size() < 20; ++it) {
      const shunt_lb_choice& c = *it;
      if (c.svc_id != id || id == 0) continue;
      nlohmann::json cands = nlohmann::json::array();
      for (int i = 0; i < c.ncand && i < 2; ++i) {
        nlohmann::json j = name(c.cand[i]);
        j["slot"] = c.slot[i];
        if (c.ncand == 2) j["score"] = c.score[i];
        cands.push_back(std::move(j));
      }
      std::string why;
      if (c.ncand == 1)
        why = e->split.empty() ? absl::StrCat("random slot ", c.slot[0], " of ", e->slots.size())
                               : absl::StrCat("random slot ", c.slot[0], " of ", e->slots.size(),
                                              " (TrafficSplit ", e->split, " weights)");
      else if (c.picked == 1)
        why = absl::StrCat("lower score: ", c.score[1], " is over 20% below ", c.score[0]);
      else if (c.score[0] <= c.score[1])
        why = absl::StrCat("lower or equal score: ", c.score[0], " <= ", c.score[1]);
      else
        why = absl::StrCat("scores within 20% (", c.score[0], " vs ", c.score[1],
                           "): the first draw");
      choices.push_back({{"ago_ms", static_cast<double>(now - static_cast<int64_t>(c.ts_ns)) / 1e6},
                         {"candidates", std::move(cands)},
                         {"picked", name(c.cand[c.picked & 1])},
                         {"why", why}});
    }
    nlohmann::json scores = nlohmann::json::array();
    for (const auto& b : e->backends) {
      nlohmann::json j = name(shunt_backend{b.ip_be, htons(b.port), 0});
      AddLbFigures({b.ip_be, b.port}, now, j);
      scores.push_back(std::move(j));
    }
    nlohmann::json entry = {{"service", e->service},
                            {"address", absl::StrCat(lib::Ipv4String(e->vip_be), ":", e->port)},
                            {"proto", e->proto == 17 ? "udp" : "tcp"},
                            {"balancer", e->lb == SHUNT_LB_P2C_EWMA ? "p2c-ewma" : "random"},
                            {"split", e->split},
                            {"l7", e->l7},
                            {"backends", std::move(scores)},
                            {"choices", std::move(choices)}};
    if (e->l7) entry["per_request"] = PerRequest(*e);
    out.push_back(std::move(entry));
  }
  return http::Json({{"services", std::move(out)}});
}

http::Response ServicesController::ServicesJson() const {
  const auto directory =
      telemetry::PeerDirectory::Build(snapshot_ ? snapshot_->pods : std::vector<model::Pod>{});
  const int64_t now = d_.clock->MonotonicNs();
  nlohmann::json out = nlohmann::json::array();
  for (const auto& e : plan_.entries) {
    std::vector<uint64_t> flows(e.backends.size(), 0);
    std::vector<size_t> slots(e.backends.size(), 0);
    uint64_t total_flows = 0;
    for (size_t i = 0; i < e.backends.size(); ++i) {
      flows[i] = d_.flows->FlowsTo(e.backends[i].ip_be, e.backends[i].port);
      total_flows += flows[i];
    }
    for (uint32_t s : e.slots) ++slots[s];
    nlohmann::json backends = nlohmann::json::array();
    for (size_t i = 0; i < e.backends.size(); ++i) {
      const auto& b = e.backends[i];
      const telemetry::Peer& peer = directory->Find(b.ip_be);
      nlohmann::json j = {
          {"address", absl::StrCat(lib::Ipv4String(b.ip_be), ":", b.port)},
          {"service", b.service},
          {"weight_percent", e.slots.empty() ? 0.0 : 100.0 * slots[i] / e.slots.size()},
          {"flows", flows[i]},
          {"live_share_percent", total_flows ? 100.0 * flows[i] / total_flows : 0.0}};
      if (peer.known()) j["pod"] = absl::StrCat(peer.namespace_, "/", peer.pod);
      if (e.lb == SHUNT_LB_P2C_EWMA) AddLbFigures({b.ip_be, b.port}, now, j);
      backends.push_back(std::move(j));
    }
    out.push_back({{"service", e.service},
                   {"port_name", e.port_name},
                   {"address", absl::StrCat(lib::Ipv4String(e.vip_be), ":", e.port)},
                   {"proto", e.proto == 17 ? "udp" : "tcp"},
                   {"balancer", e.lb == SHUNT_LB_P2C_EWMA ? "p2c-ewma" : "random"},
                   {"split", e.split},
                   {"l7", e.l7},
                   {"slots", e.slots.size()},
                   {"backends", std::move(backends)}});
  }
  return http::Json({{"services", out}, {"problems", model::ProblemsJson(plan_.problems)}});
}

}  // namespace shunt::services
