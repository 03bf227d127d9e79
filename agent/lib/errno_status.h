// The one bridge from errno / libbpf's negative error codes to absl::Status.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shunt::lib {

// `err` may be positive (errno) or negative (libbpf convention). `what` says
// what was being done: "bpf: attach sockops to /sys/fs/cgroup/x".
absl::Status ErrnoStatus(int err, absl::string_view what);

}  // namespace shunt::lib
