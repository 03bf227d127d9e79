// shuntctl flows: live and recently finished TCP flows of local pods.
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

// Filters: --from / --to (IP, NS, NS/POD, NS/KIND/WORKLOAD or KIND/WORKLOAD),
// --port N, --verdict allowed|l7|audit|denied|unmeshed,
// --path short-circuit|tcp|mtls|l7, --state live|closed; --follow streams flows as
// they finish.
absl::Status CmdFlows(const Options& o);

}  // namespace shunt::ctl
