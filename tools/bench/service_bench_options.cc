#include "tools/bench/service_bench_options.h"

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {

const char kServiceBenchUsage[] =
    "usage: shunt-service-bench [--services N] [--connections N] [--rounds N] "
    "[--backends N] [--request BYTES [--window N]] [--conntrack fresh|kept] "
    "[--policy allow|none] [--agent-flag F]... "
    "[--only shunt|iptables|direct] [--json PATH]\n";

absl::StatusOr<ServiceBenchOptions> ParseServiceBenchOptions(int argc, char** argv) {
  ServiceBenchOptions o;
  std::string conntrack = "fresh", policy = "allow";
  cli::FlagSet flags;
  flags.Int("services", &o.services, 1, 60000);
  flags.Int("connections", &o.connections, 1000, 10000000);
  flags.Int("rounds", &o.rounds, 1, 99);
  flags.Int("backends", &o.backends, 1, 64);
  flags.Int("request", &o.request_bytes, 0, 65536);
  flags.Int("window", &o.window, 1, 1000);
  flags.Repeated("agent-flag", &o.agent_flags).ValueMayStartWithDash();
  flags.Choice("conntrack", &conntrack, {"fresh", "kept"});
  flags.Choice("policy", &policy, {"allow", "none"});
  flags.Choice("only", &o.only, {"shunt", "iptables", "direct"});
  flags.String("json", &o.json_path);
  SHUNT_ASSIGN_OR_RETURN(cli::FlagSet::Result r, flags.Parse(argc, argv));
  o.help = r.help;
  if (o.help) return o;
  if (!r.args.empty())
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", r.args[0], "'"));
  o.fresh_conntrack = conntrack == "fresh";
  o.policy_allow = policy == "allow";
  return o;
}

std::string ServiceVip(int i) { return absl::StrCat("10.96.", 1 + i / 250, ".", 1 + i % 250); }

}  // namespace shunt::bench
