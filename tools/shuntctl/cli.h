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

// One request to the agent; its {"error": ...} answers become statuses.
// Unavailable when no agent answers.
absl::StatusOr<Json> AgentRequest(const Options& o, const std::string& verb,
                                  const std::string& arg = "");

}  // namespace shunt::ctl
