// shuntctl identities, policy, policy check, drops.
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

absl::Status CmdIdentities(const Options& o);   // from the pins
absl::Status CmdPolicy(const Options& o);       // from the pins, plus the agent's problems
absl::Status CmdPolicyCheck(const Options& o);  // asks the agent
absl::Status CmdDrops(const Options& o);        // asks the agent; --follow streams

}  // namespace shunt::ctl
