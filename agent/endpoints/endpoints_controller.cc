#include "endpoints_controller.h"

#include "absl/strings/str_cat.h"
#include "agent/lib/fmt_absl.h"
#include "spdlog/spdlog.h"

namespace shunt::endpoints {

absl::StatusOr<std::unique_ptr<EndpointsController>> EndpointsController::Create(Deps deps) {
  std::unique_ptr<EndpointsController> c(new EndpointsController(std::move(deps)));
  if (absl::Status s = c->tc_map_.Load(); !s.ok()) return s;
  return c;
}

EndpointsController::EndpointsController(Deps deps)
    : d_(std::move(deps)), tc_map_(d_.tc_endpoints) {}

bool EndpointsController::WantsReconcile(int64_t now_ms) {
  // Probing enters every namespace: only when something can have changed
  // (a pod not found yet, namespaces came or went), and every
  // full_probe_ms anyway to catch addresses that moved.
  for (const auto& p : plan_.local_pods)
    if (p.netns_cookie == 0) return true;
  if (last_full_probe_ms_ < 0 || now_ms - last_full_probe_ms_ > d_.full_probe_ms) return true;
  std::set<uint64_t> inodes;
  for (const auto& h : d_.scanner->List()) inodes.insert(h.inode);
  return inodes != last_netns_inodes_;
}

void EndpointsController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool) {
  snapshot_ = snapshot;
  planned_ = false;
  auto handles = d_.scanner->List();
  std::set<uint64_t> inodes;
  for (const auto& h : handles) inodes.insert(h.inode);
  auto probes = d_.scanner->Probe(handles);
  if (!probes.ok()) {
    ++probe_errors_;
    spdlog::error("netns scan: {}", probes.status().message());
    return;  // the last plan stays in force
  }
  last_netns_inodes_ = std::move(inodes);
  last_full_probe_ms_ = d_.clock->MonotonicMs();
  plan_ = MakePlan({.node = d_.node,
                    .pods = &snapshot_->pods,
                    .namespaces = &*probes,
                    .own_netns_cookie = d_.own_netns_cookie},
                   *d_.identities);
  planned_ = true;
}

size_t EndpointsController::Apply() {
  if (!planned_) return probe_errors_ > 0 ? 1 : 0;
  last_apply_ = ApplyPlan(plan_, *d_.maps);
  for (const auto& e : last_apply_.errors) spdlog::error("maps: {}", e);
  if (last_apply_.written || last_apply_.deleted)
    spdlog::info("maps: {} written, {} deleted, {} unchanged", last_apply_.written,
                 last_apply_.deleted, last_apply_.unchanged);
  return last_apply_.errors.size() + SyncTcGuards();
}

size_t EndpointsController::SyncTcGuards() {
  // A pod's veth peer must be in the agent's own namespace (the node's) to
  // carry the guards; it is when the agent runs with the node's network.
  lib::ShadowedMap<__u32, shunt_tc_endpoint>::Entries want;
  std::set<int> ifindexes;
  for (const auto& p : plan_.local_pods) {
    if (p.netns_cookie == 0 || p.host_ifindex == 0) continue;
    auto link = d_.scanner->Link(p.host_ifindex);
    if (!link.ok() || !link->peer_in_other_ns) continue;
    const shunt_endpoint& ep = plan_.endpoints.at(p.netns_cookie).ep;
    want[static_cast<__u32>(p.host_ifindex)] =
        shunt_tc_endpoint{.ip4 = ep.ip4, .identity = ep.identity};
    ifindexes.insert(p.host_ifindex);
  }
  lib::DiffReport r =
      tc_map_.Apply(want, [](const __u32& i) { return absl::StrCat("tc endpoint ", i); });
  datapath::TcSyncReport t = d_.sync_tc(ifindexes);
  tc_errors_ = r.errors;
  tc_errors_.insert(tc_errors_.end(), t.errors.begin(), t.errors.end());
  for (const auto& e : tc_errors_) spdlog::error("{}", e);
  if (t.attached || t.detached)
    spdlog::info("tc guards: {} links attached, {} detached, {} interfaces guarded", t.attached,
                 t.detached, ifindexes.size());
  tc_guarded_ = std::move(ifindexes);
  return tc_errors_.size();
}

void EndpointsController::AddStatus(nlohmann::json& status) const {
  nlohmann::json pods = nlohmann::json::array();
  for (const auto& p : plan_.local_pods)
    pods.push_back({{"pod", p.key},
                    {"ip", p.ip},
                    {"netns_cookie", p.netns_cookie},
                    {"netns", p.netns_path},
                    {"host_ifindex", p.host_ifindex},
                    {"tc_guarded", tc_guarded_.count(p.host_ifindex) > 0},
                    {"problem", p.problem}});
  status["identities"] = d_.identities->size();
  status["local_pods"] = std::move(pods);
  status["last_apply"] = {{"written", last_apply_.written},
                          {"deleted", last_apply_.deleted},
                          {"unchanged", last_apply_.unchanged},
                          {"errors", last_apply_.errors}};
  status["tc_errors"] = tc_errors_;
}

void EndpointsController::AddMetrics(std::string& out) const {
  size_t meshed = 0;
  for (const auto& p : plan_.local_pods) meshed += p.problem.empty();
  absl::StrAppend(&out,
                  "# HELP shunt_local_pods Pods of this node, by whether the mesh serves them.\n"
                  "# TYPE shunt_local_pods gauge\n",
                  "shunt_local_pods{state=\"meshed\"} ", meshed, "\n",
                  "shunt_local_pods{state=\"not_meshed\"} ", plan_.local_pods.size() - meshed, "\n",
                  "# HELP shunt_tc_guarded_interfaces Pod veths guarded by the TC programs.\n"
                  "# TYPE shunt_tc_guarded_interfaces gauge\n",
                  "shunt_tc_guarded_interfaces ", tc_guarded_.size(), "\n",
                  "# HELP shunt_netns_probe_errors_total Namespace scans that failed.\n"
                  "# TYPE shunt_netns_probe_errors_total counter\n",
                  "shunt_netns_probe_errors_total ", probe_errors_, "\n");
}

void EndpointsController::AddWarnings(std::vector<std::string>& lines) const {
  for (const auto& p : plan_.local_pods)
    if (!p.problem.empty())
      lines.push_back(absl::StrCat("pod ", p.key, ": not meshed: ", p.problem));
}

}  // namespace shunt::endpoints
