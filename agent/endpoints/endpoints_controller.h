// Endpoints: which local pods are meshed. Finds each local pod's network
// namespace, keeps the endpoints and ipcache maps equal to the plan, and
// guards each pod's veth with the TC programs (anti-spoofing, per-packet
// policy for remote sources). Owns `status` keys local_pods, last_apply,
// identities and tc_errors.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agent/controller.h"
#include "agent/datapath/tc_attacher.h"
#include "agent/endpoints/endpoint_maps.h"
#include "agent/endpoints/endpoint_plan.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/lib/clock.h"
#include "agent/lib/shadowed_map.h"
#include "agent/netns/namespace_scanner.h"

namespace shunt::endpoints {

class EndpointsController : public agent::Controller {
 public:
  using TcSync = std::function<datapath::TcSyncReport(const std::set<int>& ifindexes)>;
  struct Deps {
    std::string node;
    uint64_t own_netns_cookie = 0;  // the agent's namespace is never a pod's
    const lib::Clock* clock;
    IdentityAllocator* identities;  // shared with policy
    std::unique_ptr<EndpointMaps> maps;
    std::shared_ptr<lib::KvMap<__u32, shunt_tc_endpoint>> tc_endpoints;
    TcSync sync_tc;  // attaches and detaches the TC links
    netns::NamespaceScanner* scanner;
    int64_t full_probe_ms = 30'000;  // look into every namespace at least this often
    uint32_t ipcache_per_namespace = SHUNT_MAX_IPCACHE / 4;  // --ipcache-entries-per-namespace
  };
  // Reads the tc endpoints map an earlier agent left.
  static absl::StatusOr<std::unique_ptr<EndpointsController>> Create(Deps deps);

  std::string_view name() const override { return "endpoints"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override;
  bool WantsReconcile(int64_t now_ms) override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;
  void AddWarnings(std::vector<std::string>& lines) const override;

  // The (namespace, service account) pairs local pods use now.
  const std::set<IdentityAllocator::Key>& identities_in_use() const { return plan_.identities; }
  const endpoints::Plan& plan() const { return plan_; }

 private:
  explicit EndpointsController(Deps deps);
  size_t SyncTcGuards();

  Deps d_;
  lib::ShadowedMap<__u32, shunt_tc_endpoint> tc_map_;
  std::shared_ptr<const model::Snapshot> snapshot_;
  endpoints::Plan plan_;
  bool planned_ = false;  // plan_ reflects the last Plan() call (a probe happened)
  ApplyReport last_apply_;
  uint64_t written_total_ = 0, deleted_total_ = 0;  // since start
  std::set<int> tc_guarded_;                        // ifindexes with TC guards
  std::vector<std::string> tc_errors_;
  std::map<std::string, pid_t> last_sandbox_pids_;  // as of the last probe
  struct BoundLinks {
    pid_t pid = 0;  // the sandbox they were found for
    std::set<int> ifindexes;
  };
  std::map<std::string, BoundLinks> bound_links_;  // pod uid -> guarded node-side links
  int64_t last_full_probe_ms_ = -1;
  uint64_t probe_errors_ = 0;
};

}  // namespace shunt::endpoints
