// Up-front checks of the environment, each failing with one message that
// names what is missing.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shunt::lib {

// `dir` is on a BPF filesystem, or does not exist yet and its parent is one.
// FailedPrecondition otherwise ("bpffs: /x is not on a BPF filesystem ...").
absl::Status CheckBpffsDir(const std::string& dir);

// `path` is a directory of a cgroup v2 hierarchy. NotFound / FailedPrecondition.
absl::Status CheckCgroup2Dir(const std::string& path);

// The first cgroup2 mount point in /proc/self/mounts, or NotFound.
absl::StatusOr<std::string> FindCgroup2Mount();

}  // namespace shunt::lib
