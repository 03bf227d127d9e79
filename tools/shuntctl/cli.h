// What every shuntctl command shares: the parsed command line, the pins and
// the agent's API.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/pinned_maps.h"
#include "tools/shuntctl/args.h"
#include "tools/shuntctl/map_decode.h"

namespace shunt::ctl {

// NotFound naming --bpffs when no agent ever installed there.
absl::StatusOr<std::unique_ptr<lib::PinnedMaps>> OpenMaps(const Options& o);

// One request to the agent's local API (HTTP over --api-socket: GET
// /v1/status, /v1/flows?after=N, POST /v1/policy/check, ...); its
// {"error": ...} answers become statuses. Unavailable when no agent answers.
absl::StatusOr<Json> AgentRequest(const Options& o, const std::string& method,
                                  const std::string& target, const std::string& body = "");

}  // namespace shunt::ctl
