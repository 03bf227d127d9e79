// Removing what an agent installed, without loading any BPF object, so the
// CLI can do it too.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shunt::datapath {

// Detaches the links and removes every pin this version creates under
// `bpffs_dir`, then the directory if it is left empty, and its parents on
// the same BPF filesystem that are left empty (the agent creates missing
// parents of --bpffs), up to the mount point; anything else found there is
// left in place and named in the returned message.
absl::StatusOr<std::string> Uninstall(const std::string& bpffs_dir);

}  // namespace shunt::datapath
