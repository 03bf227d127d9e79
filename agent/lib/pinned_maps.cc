#include "pinned_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/pins.h"

namespace shunt::lib {

absl::StatusOr<UniqueFd> OpenPin(const std::string& path, bool read_only) {
  LIBBPF_OPTS(bpf_obj_get_opts, opts,
              .file_flags = read_only ? static_cast<__u32>(BPF_F_RDONLY) : 0u);
  int fd = bpf_obj_get_opts(path.c_str(), &opts);
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("pin ", path, " does not exist"));
    return ErrnoStatus(errno, absl::StrCat("bpf: open pin ", path));
  }
  return UniqueFd(fd);
}

absl::StatusOr<UniqueFd> OpenLinkPin(const std::string& path) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat("pin ", path, " does not exist"));
    return ErrnoStatus(errno, absl::StrCat("bpf: open link pin ", path));
  }
  return UniqueFd(fd);
}

absl::StatusOr<std::unique_ptr<PinnedMaps>> PinnedMaps::Open(const PinLayout& layout,
                                                             bool read_only) {
  std::unique_ptr<PinnedMaps> m(new PinnedMaps());
  SHUNT_ASSIGN_OR_RETURN(m->meta_, OpenPin(layout.Map(SHUNT_MAP_META), read_only));
  auto meta = m->meta().Lookup(0);
  if (!meta.ok()) return meta.status();
  if (meta->abi_version != SHUNT_ABI_VERSION) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pins in ", layout.dir(), " have ABI version ", meta->abi_version, ", this build reads ",
        SHUNT_ABI_VERSION, "; use the matching shuntctl or reinstall"));
  }
  SHUNT_ASSIGN_OR_RETURN(m->endpoints_, OpenPin(layout.Map(SHUNT_MAP_ENDPOINTS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->endpoint_meta_,
                         OpenPin(layout.Map(SHUNT_MAP_ENDPOINT_META), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->ipcache_, OpenPin(layout.Map(SHUNT_MAP_IPCACHE), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->ipcache6_, OpenPin(layout.Map(SHUNT_MAP_IPCACHE6), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->pod_cidrs_, OpenPin(layout.Map(SHUNT_MAP_POD_CIDRS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->sockhash_, OpenPin(layout.Map(SHUNT_MAP_SOCKHASH), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->counters_, OpenPin(layout.Map(SHUNT_MAP_COUNTERS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->policy_, OpenPin(layout.Map(SHUNT_MAP_POLICY), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->rule_meta_, OpenPin(layout.Map(SHUNT_MAP_RULE_META), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->identity_meta_,
                         OpenPin(layout.Map(SHUNT_MAP_IDENTITY_META), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->config_, OpenPin(layout.Map(SHUNT_MAP_CONFIG), read_only));
  // A ring buffer is only ever opened read-write (it is mmap'ed to consume).
  SHUNT_ASSIGN_OR_RETURN(m->events_, OpenPin(layout.Map(SHUNT_MAP_EVENTS), false));
  SHUNT_ASSIGN_OR_RETURN(m->tc_endpoints_, OpenPin(layout.Map(SHUNT_MAP_TC_ENDPOINTS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->flows_, OpenPin(layout.Map(SHUNT_MAP_FLOWS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->flow_hists_, OpenPin(layout.Map(SHUNT_MAP_FLOW_HISTS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->flow_events_, OpenPin(layout.Map(SHUNT_MAP_FLOW_EVENTS), false));
  SHUNT_ASSIGN_OR_RETURN(m->services_, OpenPin(layout.Map(SHUNT_MAP_SERVICES), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->slots_, OpenPin(layout.Map(SHUNT_MAP_SLOTS), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->lb_scores_, OpenPin(layout.Map(SHUNT_MAP_LB_SCORES), read_only));
  SHUNT_ASSIGN_OR_RETURN(m->lb_trace_, OpenPin(layout.Map(SHUNT_MAP_LB_TRACE), read_only));
  return m;
}

TypedMap<__u64, shunt_endpoint> PinnedMaps::endpoints() const {
  return {endpoints_.get(), SHUNT_MAP_ENDPOINTS};
}
TypedMap<__u64, shunt_endpoint_meta> PinnedMaps::endpoint_meta() const {
  return {endpoint_meta_.get(), SHUNT_MAP_ENDPOINT_META};
}
TypedMap<__be32, shunt_ipcache_entry> PinnedMaps::ipcache() const {
  return {ipcache_.get(), SHUNT_MAP_IPCACHE};
}
TypedMap<shunt_ip6, shunt_ipcache_entry> PinnedMaps::ipcache6() const {
  return {ipcache6_.get(), SHUNT_MAP_IPCACHE6};
}
TypedMap<shunt_cidr_key, __u8> PinnedMaps::pod_cidrs() const {
  return {pod_cidrs_.get(), SHUNT_MAP_POD_CIDRS};
}
TypedMap<__u32, shunt_meta> PinnedMaps::meta() const { return {meta_.get(), SHUNT_MAP_META}; }
TypedMap<shunt_policy_key, shunt_policy_value> PinnedMaps::policy() const {
  return {policy_.get(), SHUNT_MAP_POLICY};
}
TypedMap<__u32, shunt_rule_meta> PinnedMaps::rule_meta() const {
  return {rule_meta_.get(), SHUNT_MAP_RULE_META};
}
TypedMap<__u32, shunt_identity_meta> PinnedMaps::identity_meta() const {
  return {identity_meta_.get(), SHUNT_MAP_IDENTITY_META};
}
TypedMap<__u32, shunt_config> PinnedMaps::config() const {
  return {config_.get(), SHUNT_MAP_CONFIG};
}
TypedMap<shunt_flow_key, shunt_flow> PinnedMaps::flows() const {
  return {flows_.get(), SHUNT_MAP_FLOWS};
}
TypedMap<shunt_flow_key, shunt_flow_hist> PinnedMaps::flow_hists() const {
  return {flow_hists_.get(), SHUNT_MAP_FLOW_HISTS};
}
TypedMap<shunt_svc_key, shunt_svc_value> PinnedMaps::services() const {
  return {services_.get(), SHUNT_MAP_SERVICES};
}
TypedMap<shunt_slot_key, shunt_backend> PinnedMaps::slots() const {
  return {slots_.get(), SHUNT_MAP_SLOTS};
}
TypedMap<shunt_backend, shunt_lb_score> PinnedMaps::lb_scores() const {
  return {lb_scores_.get(), SHUNT_MAP_LB_SCORES};
}

absl::StatusOr<std::vector<shunt_lb_choice>> ReadLbTrace(int fd) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(-ncpu, "libbpf_num_possible_cpus");
  // Per-CPU values are laid out 8-byte aligned, one per possible CPU.
  std::vector<shunt_lb_trace> per_cpu(static_cast<size_t>(ncpu));
  const __u32 zero = 0;
  if (bpf_map_lookup_elem(fd, &zero, per_cpu.data()) != 0)
    return ErrnoStatus(errno, absl::StrCat("bpf: lookup in ", SHUNT_MAP_LB_TRACE));
  std::vector<shunt_lb_choice> out;
  for (const shunt_lb_trace& t : per_cpu) {
    const uint32_t n = std::min<uint32_t>(t.next, SHUNT_LB_TRACE_LEN);
    for (uint32_t i = 0; i < n; ++i) out.push_back(t.choices[i]);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.ts_ns < b.ts_ns; });
  return out;
}
TypedMap<__u32, shunt_tc_endpoint> PinnedMaps::tc_endpoints() const {
  return {tc_endpoints_.get(), SHUNT_MAP_TC_ENDPOINTS};
}

}  // namespace shunt::lib
