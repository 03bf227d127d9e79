// Loads the BPF objects, reuses or creates the pinned maps under the agent's
// bpffs directory, and attaches the programs through pinned bpf_links, so the
// data path outlives the agent process. A restarted agent swaps its freshly
// loaded programs into the existing links (bpf_link_update): attachments and
// sockhash contents are never torn down in between.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/datapath/socket_watch.h"
#include "agent/datapath/tc_attacher.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "shunt/abi/tc.h"

struct sockops;  // libbpf skeletons
struct sock_addr;
struct tc;

namespace shunt::datapath {

struct DatapathOptions {
  std::string bpffs_dir;
  std::string cgroup_root;
  // Unread redirected bytes a flow may queue at its peer before it moves to
  // TCP; 0 means 4x the kernel's tcp_rmem maximum, within [64 MiB, 256 MiB].
  uint32_t max_queued_bytes = 0;
  // All TCP memory of the node at which flows holding unread redirected
  // bytes move to TCP; 0 means the kernel's tcp_mem pressure threshold.
  uint64_t node_tcp_memory_bytes = 0;
  uint32_t mode = 0;  // SHUNT_MODE_*
  // New UDP exchanges (reply tracking), and new service reverse-NAT entries,
  // one local pod may make per 30 s.
  uint32_t udp_exchanges_per_pod = 2048;
  // ICMP echo (ping) between meshed pods passes in enforce mode.
  bool icmp_echo = false;
  // The cluster's pod ranges (--pod-cidrs): the pod-CIDR map is brought to
  // exactly these at start.
  std::vector<shunt_cidr_key> pod_cidrs;
  // Keep flow records (shunt_flows_v3, shunt_flow_hists_v1, shunt_flow_events_v3).
  bool telemetry = true;
};

struct InstallReport {
  bool reused_maps = false;    // pins existed (restart)
  bool links_updated = false;  // existing links got the new programs
  bool sk_msg_is_link = true;  // false on kernels < 6.10: attached to the map instead
  uint32_t max_queued_bytes = 0;
  uint64_t node_tcp_memory_bytes = 0;     // 0: the kernel's tcp_mem pressure threshold
  std::vector<std::string> retired_pins;  // earlier layouts' maps removed (upgrade)
  // Why the same-node short-circuit is off (the socket watch could not be
  // installed: kernel too old, functions missing); empty when it is on.
  std::string short_circuit_off;
  // sk_msg sees a send's flags before deciding it (x86_64): an urgent byte
  // takes TCP itself, not only the sends after it.
  bool send_flags_seen = false;
};

class Datapath {
 public:
  // FailedPrecondition naming the missing piece (bpffs, cgroup2, kernel
  // feature, pins of another cgroup root or ABI); other codes from the kernel.
  static absl::StatusOr<std::unique_ptr<Datapath>> Install(const DatapathOptions& opts);
  // Switches between permissive and enforce, and flow records on or off,
  // without reloading anything.
  absl::Status SetMode(uint32_t mode, bool telemetry = true, bool icmp_echo = false);
  // The TC guards on exactly these node-side veths.
  TcSyncReport SyncTc(const std::set<int>& ifindexes) { return tc_->Sync(ifindexes); }
  ~Datapath();

  const lib::PinnedMaps& maps() const { return *maps_; }
  // The short-circuit's socket watch; null when the short-circuit is off.
  SocketWatch* watch() const { return watch_.get(); }
  const InstallReport& report() const { return report_; }

 private:
  Datapath() = default;
  ::sockops* skel_ = nullptr;
  ::sock_addr* policy_skel_ = nullptr;
  ::tc* tc_skel_ = nullptr;
  std::unique_ptr<TcAttacher> tc_;
  std::unique_ptr<SocketWatch> watch_;
  std::unique_ptr<lib::PinnedMaps> maps_;
  InstallReport report_;
};

// Each missing kernel capability, named: FailedPrecondition.
absl::Status CheckKernelFeatures();

}  // namespace shunt::datapath
