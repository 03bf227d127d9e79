// The kernel capabilities the data path uses, probed through a narrow
// interface (the real one asks the kernel, a fake serves unit tests), and
// one message naming every missing one.
#pragma once

#include <linux/bpf.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shunt::datapath {

// The oldest kernel with every feature RequiredKernelFeatures lists; the
// newest of them is TCX links.
inline constexpr char kMinimumKernel[] = "6.6";

struct KernelFeature {
  bool present;
  std::string what;  // "sockops programs"
};

// Each question is answered true only if the kernel has it.
class KernelProbe {
 public:
  virtual ~KernelProbe() = default;
  virtual bool VmlinuxBtf() = 0;
  virtual bool ProgType(bpf_prog_type type) = 0;
  virtual bool MapType(bpf_map_type type) = 0;
  virtual bool Helper(bpf_prog_type type, bpf_func_id helper) = 0;
  virtual bool TcxLinks() = 0;
};

// Every capability the BPF objects and the attachments use, as `probe`
// answers for it.
std::vector<KernelFeature> RequiredKernelFeatures(KernelProbe& probe);

// Whether the verifier log of a program that only calls one helper says the
// helper is unavailable to that program type: "invalid func unknown#187"
// (helper unknown to the kernel), "unknown func bpf_x#187" (older kernels),
// "program of this type cannot use helper bpf_x#187" (newer ones, which
// libbpf 1.1's libbpf_probe_bpf_helper does not know and takes for yes).
bool VerifierRejectsHelper(absl::string_view log);

// OK when all are present; otherwise FailedPrecondition:
// "kernel: missing sockops programs, SOCKHASH maps (Shunt needs Linux >= 6.6 with BPF)".
absl::Status KernelFeatureStatus(const std::vector<KernelFeature>& features);

}  // namespace shunt::datapath
