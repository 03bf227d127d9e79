#include "endpoints_controller.h"

#include <cstring>

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
  // Probing enters namespaces: only when something can have changed (a pod
  // not bound yet, a sandbox came, went or was replaced), and every
  // full_probe_ms anyway to catch addresses that moved.
  for (const auto& p : plan_.local_pods)
    if (p.netns_cookie == 0) return true;
  if (last_full_probe_ms_ < 0 || now_ms - last_full_probe_ms_ > d_.full_probe_ms) return true;
  return d_.scanner->SandboxPids() != last_sandbox_pids_;
}

void EndpointsController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool) {
  snapshot_ = snapshot;
  planned_ = false;
  std::set<std::string> uids;
  for (const model::Pod& p : snapshot_->pods)
    if (p.node_name == d_.node && !p.uid.empty() && !p.host_network) uids.insert(p.uid);
  auto pids = d_.scanner->SandboxPids();
  auto sandboxes = d_.scanner->Sandboxes(uids);
  if (!sandboxes.ok()) {
    ++probe_errors_;
    spdlog::error("sandbox scan: {}", sandboxes.status().message());
    return;  // the last plan stays in force
  }
  last_sandbox_pids_ = std::move(pids);
  last_full_probe_ms_ = d_.clock->MonotonicMs();
  plan_ = MakePlan({.node = d_.node,
                    .pods = &snapshot_->pods,
                    .namespaces = &snapshot_->namespaces,
                    .sandboxes = &*sandboxes,
                    .own_netns_cookie = d_.own_netns_cookie,
                    .ipcache_per_namespace = d_.ipcache_per_namespace},
                   *d_.identities);
  planned_ = true;
}

size_t EndpointsController::Apply() {
  if (!planned_) return probe_errors_ > 0 ? 1 : 0;
  last_apply_ = ApplyPlan(plan_, *d_.maps);
  written_total_ += last_apply_.written;
  deleted_total_ += last_apply_.deleted;
  for (const auto& e : last_apply_.errors) spdlog::error("maps: {}", e);
  if (last_apply_.written || last_apply_.deleted)
    spdlog::info("maps: {} written, {} deleted, {} unchanged", last_apply_.written,
                 last_apply_.deleted, last_apply_.unchanged);
  return last_apply_.errors.size() + SyncTcGuards();
}

size_t EndpointsController::SyncTcGuards() {
  // A pod's veth peer must be in the agent's own namespace (the node's) to
  // carry the guards; it is when the agent runs with the node's network.
  // An interface once found for a sandbox stays guarded, with the pod's IP
  // and identity, while that sandbox lives: even if the pod moves its end
  // elsewhere or drops its IP (and is no longer meshed for it), the guard
  // must not follow anything the pod controls.
  lib::ShadowedMap<__u32, shunt_tc_endpoint>::Entries want;
  std::set<int> ifindexes;
  std::map<std::string, BoundLinks> bound;
  // Guards an earlier agent gave each IP (the pins outlive us; status.podIP
  // is the kubelet's, not the pod's): they stay with that IP's pod.
  std::multimap<uint32_t, int> pinned_by_ip;
  for (const auto& [ifindex, old] : tc_map_.shadow())
    pinned_by_ip.emplace(old.ip4, static_cast<int>(ifindex));
  for (const auto& p : plan_.local_pods) {
    if (p.pid == 0) continue;  // no sandbox found
    const auto ipc = plan_.ipcache.find(p.ip_be);
    if (ipc == plan_.ipcache.end()) continue;
    shunt_tc_endpoint guard{.ip4 = ipc->first, .identity = ipc->second.identity};
    std::memcpy(&guard.ip6, p.ip6_bytes.data(), sizeof(guard.ip6));
    BoundLinks& links = bound[p.uid];
    links.pid = p.pid;
    links.ifindexes.insert(p.host_ifindexes.begin(), p.host_ifindexes.end());
    if (auto was = bound_links_.find(p.uid); was != bound_links_.end() && was->second.pid == p.pid)
      links.ifindexes.insert(was->second.ifindexes.begin(), was->second.ifindexes.end());
    for (auto [it, end] = pinned_by_ip.equal_range(guard.ip4); it != end; ++it)
      links.ifindexes.insert(it->second);
    for (auto it = links.ifindexes.begin(); it != links.ifindexes.end();) {
      auto link = d_.scanner->Link(*it);
      if (!link.ok()) {  // gone with its namespace
        it = links.ifindexes.erase(it);
        continue;
      }
      if (link->peer_in_other_ns) {
        want[static_cast<__u32>(*it)] = guard;
        ifindexes.insert(*it);
      }
      ++it;
    }
  }
  bound_links_ = std::move(bound);
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
  for (const auto& p : plan_.local_pods) {
    std::vector<int> links;
    if (auto b = bound_links_.find(p.uid); b != bound_links_.end())
      links.assign(b->second.ifindexes.begin(), b->second.ifindexes.end());
    bool guarded = !links.empty();
    for (int i : links) guarded &= tc_guarded_.count(i) > 0;
    pods.push_back({{"pod", p.key},
                    {"uid", p.uid},
                    {"ip", p.ip},
                    {"ip6", p.ip6},
                    {"cgroup", p.cgroup},
                    {"sandbox_pid", p.pid},
                    {"netns_cookie", p.netns_cookie},
                    {"netns", p.netns_path},
                    {"host_ifindexes", links},
                    {"tc_guarded", guarded},
                    {"problem", p.problem}});
  }
  status["identities"] = d_.identities->size();
  status["local_pods"] = std::move(pods);
  status["last_apply"] = {{"written", last_apply_.written},     {"written_total", written_total_},
                          {"deleted_total", deleted_total_},    {"deleted", last_apply_.deleted},
                          {"unchanged", last_apply_.unchanged}, {"errors", last_apply_.errors}};
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
                  "shunt_netns_probe_errors_total ", probe_errors_, "\n",
                  "# HELP shunt_endpoint_map_writes_total Endpoint and ipcache map entries "
                  "written and deleted since the agent started.\n"
                  "# TYPE shunt_endpoint_map_writes_total counter\n",
                  "shunt_endpoint_map_writes_total{op=\"written\"} ", written_total_, "\n",
                  "shunt_endpoint_map_writes_total{op=\"deleted\"} ", deleted_total_, "\n");
}

void EndpointsController::AddWarnings(std::vector<std::string>& lines) const {
  for (const auto& p : plan_.local_pods)
    if (!p.problem.empty())
      lines.push_back(absl::StrCat("pod ", p.key, ": not meshed: ", p.problem));
  lines.insert(lines.end(), plan_.over_share.begin(), plan_.over_share.end());
}

}  // namespace shunt::endpoints
