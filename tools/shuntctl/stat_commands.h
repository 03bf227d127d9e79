// shuntctl stat and top: golden metrics over a recent window, from the agent.
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

// stat [workload|pod|edge] [--window 30s]: one table.
absl::Status CmdStat(const Options& o);
// top [--window 30s] [--interval 2s]: the busiest edges, refreshed in place
// on a terminal; one snapshot without escape codes over a pipe.
absl::Status CmdTop(const Options& o);

}  // namespace shunt::ctl
