// shuntctl services: each service address, its backends, weights and live
// shares, from the agent.
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

absl::Status CmdServices(const Options& o);

}  // namespace shunt::ctl
