#include "tools/bench/options.h"

#include <climits>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {

const char kUsage[] =
    R"(usage: shunt-bench [--rounds N] [--rr-iterations N] [--bulk-seconds S] [--json PATH]

Measures pod-to-pod TCP on one simulated node three ways, each with fresh
connections:
  kernel   plain TCP through the node namespace, no agent
  shunt    the same with shunt-agent running (sockets short-circuited)
  haproxy  agent uninstalled; client -> haproxy (client pod) -> haproxy (server
           pod) -> server, a two-sidecar chain
in interleaved rounds: each round runs kernel, then starts the agent and runs
shunt, then stops and uninstalls the agent; after all rounds, haproxy runs
--rounds times. The table shows the median over rounds of each number (on
small VMs latency is bimodal with client/server thread placement, so one run
is not enough); per-round values are printed below it.
Holds /dev/cpu_dma_latency at 0 for the whole run. Needs root and haproxy.

Flags:
  --rounds N          rounds per path (default 3, 1..99); run time grows
                      linearly (all defaults: about 35 s on 2 vCPUs)
  --rr-iterations N   sampled 64-byte round trips per path per round (default
                      50000; 2000 warm-up round trips come first)
  --bulk-seconds S    duration of the one-stream bulk test per path per round
                      (default 3)
  --agent-flag F      pass F to shunt-agent for the shunt path (repeatable),
                      e.g. --agent-flag=--max-queued-bytes=67108864
  --json PATH         where to write the results (default bench-results.json)
  -h, --help          this text

EXAMPLES
  sudo build/tools/bench/shunt-bench
  sudo build/tools/bench/shunt-bench --rounds 5 --rr-iterations 200000 --bulk-seconds 10 --json /tmp/b.json
)";

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  cli::FlagSet flags;
  flags.Int("rounds", &o.rounds, 1, kMaxRounds);
  flags.Int("rr-iterations", &o.rr_iterations, 1000, INT_MAX);  // p99.9 needs samples
  flags.Double("bulk-seconds", &o.bulk_seconds, 0.1, 3600);
  flags.Repeated("agent-flag", &o.agent_flags).ValueMayStartWithDash();
  flags.String("json", &o.json_path);
  SHUNT_ASSIGN_OR_RETURN(cli::FlagSet::Result r, flags.Parse(argc, argv));
  o.help = r.help;
  if (o.help) return o;
  if (!r.args.empty())
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", r.args[0], "'"));
  if (o.json_path.empty()) return absl::InvalidArgumentError("--json wants a path");
  return o;
}

}  // namespace shunt::bench
