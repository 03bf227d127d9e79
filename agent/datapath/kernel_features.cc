#include "kernel_features.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shunt::datapath {

std::vector<KernelFeature> RequiredKernelFeatures(KernelProbe& probe) {
  return {
      {probe.VmlinuxBtf(), "kernel BTF (/sys/kernel/btf/vmlinux)"},
      {probe.ProgType(BPF_PROG_TYPE_SOCK_OPS), "sockops programs"},
      {probe.ProgType(BPF_PROG_TYPE_SK_MSG), "sk_msg programs"},
      {probe.MapType(BPF_MAP_TYPE_SOCKHASH), "SOCKHASH maps"},
      {probe.MapType(BPF_MAP_TYPE_SK_STORAGE), "socket-local storage"},
      {probe.Helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_netns_cookie),
       "bpf_get_netns_cookie in sockops"},
      {probe.ProgType(BPF_PROG_TYPE_CGROUP_SOCK_ADDR), "cgroup sock_addr programs"},
      {probe.MapType(BPF_MAP_TYPE_RINGBUF), "ring buffers"},
      // sock_addr.bpf.c refuses a service without backends with ECONNREFUSED.
      {probe.Helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_FUNC_set_retval),
       "bpf_set_retval in cgroup sock_addr programs (Linux 5.18)"},
      // tc_attacher.cc attaches the TC guards through tcx links only.
      {probe.TcxLinks(), "TCX links (Linux 6.6)"},
  };
}

bool VerifierRejectsHelper(absl::string_view log) {
  return absl::StrContains(log, "invalid func ") || absl::StrContains(log, "unknown func ") ||
         absl::StrContains(log, "program of this type cannot use helper ");
}

absl::Status KernelFeatureStatus(const std::vector<KernelFeature>& features) {
  std::vector<std::string> missing;
  for (const KernelFeature& f : features)
    if (!f.present) missing.push_back(f.what);
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("kernel: missing ", absl::StrJoin(missing, ", "),
                   " (Shunt needs Linux >= ", kMinimumKernel, " with BPF)"));
}

}  // namespace shunt::datapath
