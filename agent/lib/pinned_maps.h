// Opens the maps an agent pinned, by path, for the CLI, the uninstaller and
// tests. Refuses maps written by another ABI version.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/typed_map.h"
#include "agent/lib/unique_fd.h"
#include "shunt/abi/common.h"
#include "shunt/abi/endpoint.h"
#include "shunt/abi/flow.h"
#include "shunt/abi/policy.h"
#include "shunt/abi/service.h"
#include "shunt/abi/tc.h"

namespace shunt::lib {

class PinnedMaps {
 public:
  // NotFound if the pins are absent (no agent ever ran with this bpffs dir);
  // FailedPrecondition on an ABI version mismatch.
  static absl::StatusOr<std::unique_ptr<PinnedMaps>> Open(const PinLayout& layout, bool read_only);

  TypedMap<__u64, shunt_endpoint> endpoints() const;
  TypedMap<__u64, shunt_endpoint_meta> endpoint_meta() const;
  TypedMap<__be32, shunt_ipcache_entry> ipcache() const;
  TypedMap<shunt_ip6, shunt_ipcache_entry> ipcache6() const;
  TypedMap<shunt_cidr_key, __u8> pod_cidrs() const;
  TypedMap<__u32, shunt_meta> meta() const;
  TypedMap<shunt_policy_key, shunt_policy_value> policy() const;
  TypedMap<__u32, shunt_rule_meta> rule_meta() const;
  TypedMap<__u32, shunt_identity_meta> identity_meta() const;
  TypedMap<__u32, shunt_config> config() const;
  TypedMap<__u32, shunt_tc_endpoint> tc_endpoints() const;
  TypedMap<shunt_flow_key, shunt_flow> flows() const;
  TypedMap<shunt_flow_key, shunt_flow_hist> flow_hists() const;
  TypedMap<shunt_svc_key, shunt_svc_value> services() const;
  TypedMap<shunt_slot_key, shunt_backend> slots() const;
  TypedMap<shunt_backend, shunt_lb_score> lb_scores() const;
  // Per-CPU: read with ReadLbTrace.
  int lb_trace_fd() const { return lb_trace_.get(); }
  int counters_fd() const { return counters_.get(); }
  int sockhash_fd() const { return sockhash_.get(); }
  int events_fd() const { return events_.get(); }
  int flow_events_fd() const { return flow_events_.get(); }
  int flows_fd() const { return flows_.get(); }
  int flow_hists_fd() const { return flow_hists_.get(); }

 private:
  PinnedMaps() = default;
  UniqueFd meta_, endpoints_, endpoint_meta_, ipcache_, ipcache6_, pod_cidrs_, sockhash_, counters_;
  UniqueFd policy_, rule_meta_, identity_meta_, config_, events_, tc_endpoints_;
  UniqueFd flows_, flow_hists_, flow_events_, services_, slots_, lb_scores_, lb_trace_;
};

// Every CPU's ring of recent balancing choices, merged, oldest first.
absl::StatusOr<std::vector<shunt_lb_choice>> ReadLbTrace(int lb_trace_fd);

// Opens one pinned map by path. NotFound if absent.
absl::StatusOr<UniqueFd> OpenPin(const std::string& path, bool read_only);

// Opens a pinned link (links take no access-mode flags). NotFound if absent.
absl::StatusOr<UniqueFd> OpenLinkPin(const std::string& path);

}  // namespace shunt::lib
