#include "kernel_features.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shunt::datapath {

absl::Status KernelFeatureStatus(const std::vector<KernelFeature>& features) {
  std::vector<std::string> missing;
  for (const KernelFeature& f : features)
    if (!f.present) missing.push_back(f.what);
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "kernel: missing ", absl::StrJoin(missing, ", "), " (Shunt needs Linux >= 5.15 with BPF)"));
}

}  // namespace shunt::datapath
