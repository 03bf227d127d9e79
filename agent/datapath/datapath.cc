#include "datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/datapath/kernel_features.h"
#include "agent/datapath/pinned_links.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/status_macros.h"
#include "agent/lib/unique_fd.h"
#include "shunt/abi/pins.h"
#include "sock_addr.skel.h"
#include "sockops.skel.h"
#include "tc.skel.h"

namespace shunt::datapath {
namespace {

// One directory whose parent exists (MakeBpffsDir made it).
absl::Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return lib::ErrnoStatus(errno, absl::StrCat("bpffs: create ", dir));
  return absl::OkStatus();
}

absl::Status AttachSkMsg(const lib::PinLayout& layout, int prog_fd, int sockhash_fd,
                         InstallReport& report) {
  const std::string pin = layout.Link(SHUNT_LINK_SK_MSG);
  absl::Status updated = UpdatePinnedLink(pin, prog_fd);
  if (updated.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(updated)) return updated;
  int link_fd = bpf_link_create(prog_fd, sockhash_fd, BPF_SK_MSG_VERDICT, nullptr);
  if (link_fd >= 0) return PinNewLink(link_fd, pin);
  if (errno != EINVAL && errno != EOPNOTSUPP)
    return lib::ErrnoStatus(errno, "bpf: attach sk_msg to the sockhash");
  // Kernels before 6.10 have no sockmap links: attach to the map itself. The
  // attachment lives as long as the pinned map, which is what we need.
  report.sk_msg_is_link = false;
  if (bpf_prog_attach(prog_fd, sockhash_fd, BPF_SK_MSG_VERDICT, 0) != 0)
    return lib::ErrnoStatus(errno, "bpf: attach sk_msg to the sockhash (legacy attach)");
  return absl::OkStatus();
}

// Default per-flow budget of unread redirected bytes: four times the largest
// TCP receive buffer (net.ipv4.tcp_rmem), at least 64 MiB, at most 256 MiB.
// Why this much: a writer sharing a CPU with its reader runs a whole
// scheduler slice ahead before the reader gets to run (measured here: more
// than 64 MiB at 60 Gbit/s), and falling back to TCP is expensive on Linux
// 6.18 — the receiver's TCP window collapses to two segments while it drains
// the redirected queue, costing ~200 ms per fallback. The budget is a guard
// against readers that stop, not a pacing mechanism.
uint32_t DefaultQueueBudget() {
  constexpr uint64_t kMin = 64ull << 20, kMax = 256ull << 20;
  std::ifstream f("/proc/sys/net/ipv4/tcp_rmem");
  uint64_t min = 0, def = 0, max = 0;
  if (!(f >> min >> def >> max) || max == 0) return static_cast<uint32_t>(kMin);
  return static_cast<uint32_t>(std::clamp<uint64_t>(4 * max, kMin, kMax));
}

// Brings the pod-CIDR map to exactly `want` (an earlier agent's ranges go).
absl::Status SetPodCidrs(lib::TypedMap<shunt_cidr_key, __u8> map,
                         const std::vector<shunt_cidr_key>& want) {
  SHUNT_ASSIGN_OR_RETURN(auto have, map.Keys());
  for (const shunt_cidr_key& k : have) {
    bool keep = false;
    for (const shunt_cidr_key& w : want) keep |= std::memcmp(&k, &w, sizeof(k)) == 0;
    if (!keep) SHUNT_RETURN_IF_ERROR(map.Delete(k));
  }
  for (const shunt_cidr_key& w : want) SHUNT_RETURN_IF_ERROR(map.Update(w, 1));
  return absl::OkStatus();
}

absl::Status InitMeta(int meta_fd) {
  lib::TypedMap<__u32, shunt_meta> mm(meta_fd, SHUNT_MAP_META);
  auto meta = mm.Lookup(0);
  if (!meta.ok()) return meta.status();
  if (meta->abi_version == SHUNT_ABI_VERSION) return absl::OkStatus();
  if (meta->abi_version != 0)
    return absl::FailedPreconditionError(absl::StrCat("bpffs: pins have ABI version ",
                                                      meta->abi_version, ", this agent writes ",
                                                      SHUNT_ABI_VERSION));
  shunt_meta m{.abi_version = SHUNT_ABI_VERSION,
               .pad = 0,
               .installed_at_unix = static_cast<__u64>(time(nullptr))};
  return mm.Update(0, m);
}

// libbpf's probes load a minimal program or create a minimal map. Helpers
// are probed here: libbpf 1.1 misreads the verifier of newer kernels (see
// VerifierRejectsHelper) and calls a helper present when the program was
// refused before the verifier ran.
class LibbpfKernelProbe : public KernelProbe {
 public:
  bool VmlinuxBtf() override { return access("/sys/kernel/btf/vmlinux", R_OK) == 0; }
  bool ProgType(bpf_prog_type type) override {
    return libbpf_probe_bpf_prog_type(type, nullptr) == 1;
  }
  bool MapType(bpf_map_type type) override { return libbpf_probe_bpf_map_type(type, nullptr) == 1; }
  // Loads "call helper; exit". The load may still fail (r0 out of range for
  // the type): only a verifier log that rejects the call itself, or no log
  // at all, means missing.
  bool Helper(bpf_prog_type type, bpf_func_id helper) override {
    const bpf_insn insns[] = {
        {.code = BPF_JMP | BPF_CALL, .imm = helper},
        {.code = BPF_JMP | BPF_EXIT},
    };
    char log[4096] = "";
    LIBBPF_OPTS(bpf_prog_load_opts, opts,
                .expected_attach_type = type == BPF_PROG_TYPE_CGROUP_SOCK_ADDR
                                            ? BPF_CGROUP_INET4_CONNECT
                                            : static_cast<bpf_attach_type>(0),
                .log_level = 1, .log_size = sizeof(log), .log_buf = log);
    lib::UniqueFd fd(bpf_prog_load(type, nullptr, "GPL", insns, std::size(insns), &opts));
    if (fd.valid()) return true;
    return log[0] != '\0' && !VerifierRejectsHelper(log);
  }
  bool TcxLinks() override { return TcxLinksSupported(); }
};

}  // namespace

absl::Status CheckKernelFeatures() {
  LibbpfKernelProbe probe;
  return KernelFeatureStatus(RequiredKernelFeatures(probe));
}

absl::StatusOr<std::unique_ptr<Datapath>> Datapath::Install(const DatapathOptions& opts) {
  SHUNT_RETURN_IF_ERROR(lib::CheckBpffsDir(opts.bpffs_dir));
  SHUNT_RETURN_IF_ERROR(lib::CheckCgroup2Dir(opts.cgroup_root));
  SHUNT_RETURN_IF_ERROR(CheckKernelFeatures());
  const lib::PinLayout layout(opts.bpffs_dir);
  // Creates the missing directories of --bpffs too, not only its last one.
  SHUNT_RETURN_IF_ERROR(lib::MakeBpffsDir(layout.dir()));
  SHUNT_RETURN_IF_ERROR(MakeDir(layout.LinkDir()));

  std::unique_ptr<Datapath> dp(new Datapath());
  dp->report_.reused_maps = access(layout.Map(SHUNT_MAP_SOCKHASH).c_str(), F_OK) == 0;
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = layout.dir().c_str());
  dp->skel_ = sockops__open_opts(&open_opts);
  if (!dp->skel_) return lib::ErrnoStatus(errno, "bpf: open sockops object");
  dp->report_.max_queued_bytes =
      opts.max_queued_bytes ? opts.max_queued_bytes : DefaultQueueBudget();
  dp->skel_->rodata->max_queued_bytes = dp->report_.max_queued_bytes;
  // 0: the kernel's tcp_mem pressure threshold, which sk_msg reads live.
  dp->report_.node_tcp_memory_bytes = opts.node_tcp_memory_bytes;
  dp->skel_->rodata->node_tcp_budget_pages =
      dp->report_.node_tcp_memory_bytes / static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // sk_msg reads a send's flags from the sender's saved registers, whose
  // layout it knows for x86_64 only (bpf/lib/send_flags.bpf.h).
  struct utsname host {};
  dp->report_.send_flags_seen = uname(&host) == 0 && std::string_view(host.machine) == "x86_64";
  dp->skel_->rodata->send_flags_from_regs = dp->report_.send_flags_seen ? 1 : 0;
  if (int err = sockops__load(dp->skel_); err != 0) {
    return lib::ErrnoStatus(err, absl::StrCat("bpf: load sockops object (maps pinned in ",
                                              layout.dir(), " may be of another layout)"));
  }
  dp->policy_skel_ = sock_addr__open_opts(&open_opts);
  if (!dp->policy_skel_) return lib::ErrnoStatus(errno, "bpf: open sock_addr object");
  dp->policy_skel_->rodata->udp_revnat_budget = opts.udp_exchanges_per_pod;
  if (int err = sock_addr__load(dp->policy_skel_); err != 0)
    return lib::ErrnoStatus(err, absl::StrCat("bpf: load sock_addr object (maps pinned in ",
                                              layout.dir(), " may be of another layout)"));
  dp->tc_skel_ = tc__open_opts(&open_opts);
  if (!dp->tc_skel_) return lib::ErrnoStatus(errno, "bpf: open tc object");
  dp->tc_skel_->rodata->udp_exchange_budget = opts.udp_exchanges_per_pod;
  if (int err = tc__load(dp->tc_skel_); err != 0)
    return lib::ErrnoStatus(err, absl::StrCat("bpf: load tc object (maps pinned in ", layout.dir(),
                                              " may be of another layout)"));
  dp->tc_ =
      std::make_unique<TcAttacher>(layout, bpf_program__fd(dp->tc_skel_->progs.shunt_tc_from_pod),
                                   bpf_program__fd(dp->tc_skel_->progs.shunt_tc_to_pod));
  SHUNT_RETURN_IF_ERROR(InitMeta(bpf_map__fd(dp->skel_->maps.shunt_meta_v1)));
  SHUNT_ASSIGN_OR_RETURN(dp->maps_, lib::PinnedMaps::Open(layout, /*read_only=*/false));
  // Before sockops runs this version: a short-circuit without its watch
  // would change what applications see, so without one it is off.
  if (auto watch = SocketWatch::Install(layout, opts.cgroup_root); watch.ok())
    dp->watch_ = std::move(*watch);
  else
    dp->report_.short_circuit_off = std::string(watch.status().message());
  // The mode is in place before any policy hook can run.
  SHUNT_RETURN_IF_ERROR(dp->SetMode(opts.mode, opts.telemetry, opts.icmp_echo));
  SHUNT_RETURN_IF_ERROR(SetPodCidrs(dp->maps_->pod_cidrs(), opts.pod_cidrs));
  SHUNT_RETURN_IF_ERROR(AttachSkMsg(layout, bpf_program__fd(dp->skel_->progs.shunt_sk_msg),
                                    dp->maps_->sockhash_fd(), dp->report_));
  SHUNT_RETURN_IF_ERROR(
      AttachCgroupLink(layout, opts.cgroup_root, bpf_program__fd(dp->skel_->progs.shunt_sockops),
                       BPF_CGROUP_SOCK_OPS, SHUNT_LINK_SOCKOPS, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_connect4),
      BPF_CGROUP_INET4_CONNECT, SHUNT_LINK_CONNECT4, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_sendmsg4),
      BPF_CGROUP_UDP4_SENDMSG, SHUNT_LINK_SENDMSG4, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_getpeername4),
      BPF_CGROUP_INET4_GETPEERNAME, SHUNT_LINK_GETPEERNAME4, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_recvmsg4),
      BPF_CGROUP_UDP4_RECVMSG, SHUNT_LINK_RECVMSG4, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_connect6),
      BPF_CGROUP_INET6_CONNECT, SHUNT_LINK_CONNECT6, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_getpeername6),
      BPF_CGROUP_INET6_GETPEERNAME, SHUNT_LINK_GETPEERNAME6, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_recvmsg6),
      BPF_CGROUP_UDP6_RECVMSG, SHUNT_LINK_RECVMSG6, &dp->report_.links_updated));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(
      layout, opts.cgroup_root, bpf_program__fd(dp->policy_skel_->progs.shunt_sendmsg6),
      BPF_CGROUP_UDP6_SENDMSG, SHUNT_LINK_SENDMSG6, &dp->report_.links_updated));
  // Every link now runs this version's programs: maps only an earlier
  // layout used are dead weight (a flows map of the old layout alone held
  // 15 MiB).
  for (const std::string& name : lib::RetiredMapList()) {
    if (unlink(layout.Map(name).c_str()) == 0) dp->report_.retired_pins.push_back(name);
  }
  return dp;
}

absl::Status Datapath::SetMode(uint32_t mode, bool telemetry, bool icmp_echo) {
  if (mode != SHUNT_MODE_PERMISSIVE && mode != SHUNT_MODE_ENFORCE)
    return absl::InvalidArgumentError(absl::StrCat("unknown mode ", mode));
  auto cfg = maps_->config();
  return cfg.Update(0, shunt_config{.mode = mode,
                                    .flags = (telemetry ? 0u : SHUNT_CONFIG_F_NO_TELEMETRY) |
                                             (icmp_echo ? SHUNT_CONFIG_F_ICMP_ECHO : 0u) |
                                             (watch_ ? 0u : SHUNT_CONFIG_F_NO_SHORT_CIRCUIT)});
}

Datapath::~Datapath() {
  // Closes fds only: pins and links stay.
  watch_.reset();
  tc_.reset();
  if (tc_skel_) tc__destroy(tc_skel_);
  if (policy_skel_) sock_addr__destroy(policy_skel_);
  if (skel_) sockops__destroy(skel_);
}

}  // namespace shunt::datapath
