// shuntctl services: each service address, its backends, weights and live
// shares, from the agent.
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

absl::Status CmdServices(const Options& o);
// shuntctl lb explain NS/NAME: the last balancing choices for a service,
// both candidates and their scores, and the backends' current scores.
absl::Status CmdLbExplain(const Options& o);

}  // namespace shunt::ctl
