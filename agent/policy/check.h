// `shuntctl policy check`: the verdict the kernel gives one connection
// between two pods of the config, and which object decided it, in words.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/model/objects.h"
#include "agent/policy/compiler.h"
#include "nlohmann/json.hpp"

namespace shunt::policy {

struct CheckRequest {
  std::string from;  // namespace/pod
  std::string to;    // namespace/pod
  uint16_t port = 0;
  uint8_t proto = kTcp;
};

// Parses "from", "to", "port", "proto" ("tcp"/"udp") from JSON.
// InvalidArgument naming the field.
absl::StatusOr<CheckRequest> ParseCheckRequest(const nlohmann::json& j);

// NotFound if a pod is not in the config. `l7_node`: the node whose proxy's
// L7 layer is up (this agent's, while its proxy is ready), empty if none: an
// HTTP-routes-only grant between two TCP pods of that node is judged per
// request there (docs/l7.md) instead of opening nothing.
absl::StatusOr<nlohmann::json> Check(const CheckRequest& req, const model::Snapshot& snapshot,
                                     const CompiledPolicy& policy,
                                     const endpoints::IdentityAllocator& ids, uint32_t mode,
                                     const std::string& l7_node = "", bool l7_across_nodes = true);

}  // namespace shunt::policy
