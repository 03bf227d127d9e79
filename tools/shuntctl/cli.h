// What every shuntctl command shares: the parsed command line, the pins and
// the agent's API.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/pinned_maps.h"
#include "tools/shuntctl/map_decode.h"

namespace shunt::ctl {

struct Options {
  std::string bpffs = "/sys/fs/bpf/shunt";
  std::string api_socket = "/run/shunt/agent.sock";
  bool json = false;
  bool follow = false;
  std::map<std::string, std::string> flags;  // command flags: from, to, port, proto
  std::vector<std::string> args;
};

// NotFound naming --bpffs when no agent ever installed there.
absl::StatusOr<std::unique_ptr<lib::PinnedMaps>> OpenMaps(const Options& o);

// One request to the agent; its {"error": ...} answers become statuses.
// Unavailable when no agent answers.
absl::StatusOr<Json> AgentRequest(const Options& o, const std::string& verb, const std::string& arg = "");

}  // namespace shunt::ctl
