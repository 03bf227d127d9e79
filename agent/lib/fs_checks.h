// Up-front checks of the environment, each failing with one message that
// names what is missing.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace shunt::lib {

// What stat() and statfs() say about one path.
struct PathFacts {
  int err = 0;  // errno of stat(); ENOENT or ENOTDIR: the path does not exist
  bool is_dir = false;
  bool on_bpffs = false;  // statfs() f_type is BPF_FS_MAGIC
};
using PathProbe = std::function<PathFacts(const std::string& path)>;

// The directories to create, outermost first, for `dir` to be a directory on
// a BPF filesystem: none if it is one, the missing ones if its nearest
// existing ancestor is on a BPF filesystem. FailedPrecondition naming the
// path at fault otherwise: "bpffs: /x is not on a BPF filesystem ...",
// "bpffs: /x/y: /x does not exist, and its parent / is not on a BPF
// filesystem ...", "bpffs: /x is not a directory"; the errno's code when a
// path cannot be examined (PermissionDenied, ...). `probe` is StatPath
// outside tests.
absl::StatusOr<std::vector<std::string>> PlanBpffsDir(const std::string& dir,
                                                      const PathProbe& probe);

// stat() and statfs() of `path`.
PathFacts StatPath(const std::string& path);

// PlanBpffsDir with the real filesystem; creates nothing.
absl::Status CheckBpffsDir(const std::string& dir);

// CheckBpffsDir, then creates the missing directories (mode 0700). The
// errno's code when a mkdir fails.
absl::Status MakeBpffsDir(const std::string& dir);

// `path` is a directory of a cgroup v2 hierarchy. NotFound / FailedPrecondition.
absl::Status CheckCgroup2Dir(const std::string& path);

// The first cgroup2 mount point in /proc/self/mounts, or NotFound.
absl::StatusOr<std::string> FindCgroup2Mount();

}  // namespace shunt::lib
