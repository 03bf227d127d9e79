// The node's own address when --node-ip is not given.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace shunt::mtls {

// The IPv4 source address of the default route (what the kernel would use
// toward the documentation address 192.0.2.1: a UDP connect sends
// nothing). FailedPrecondition when there is no default route.
absl::StatusOr<std::string> DefaultRouteSource();

}  // namespace shunt::mtls
