// Turns kernel capability probes into one message naming every missing one.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace shunt::datapath {

struct KernelFeature {
  bool present;
  std::string what;  // "sockops programs"
};

// OK when all are present; otherwise FailedPrecondition:
// "kernel: missing sockops programs, SOCKHASH maps (Shunt needs Linux >= 5.15 with BPF)".
absl::Status KernelFeatureStatus(const std::vector<KernelFeature>& features);

}  // namespace shunt::datapath
