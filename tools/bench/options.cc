#include "tools/bench/options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

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

namespace {

// "--flag=value" or "--flag value": the value, advancing i for the latter.
absl::StatusOr<std::string> FlagValue(int argc, char** argv, int& i, absl::string_view name) {
  absl::string_view arg = argv[i];
  if (arg.size() > name.size() && arg[name.size()] == '=')
    return std::string(arg.substr(name.size() + 1));
  if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
  return std::string(argv[++i]);
}

bool IsFlag(absl::string_view arg, absl::string_view name) {
  return arg == name || (arg.size() > name.size() && arg.substr(0, name.size()) == name &&
                         arg[name.size()] == '=');
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (IsFlag(arg, "--rounds")) {
      auto v = FlagValue(argc, argv, i, "--rounds");
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &o.rounds) || o.rounds < 1 || o.rounds > kMaxRounds)
        return absl::InvalidArgumentError(
            absl::StrCat("--rounds wants an integer in [1, ", kMaxRounds, "], got '", *v, "'"));
    } else if (IsFlag(arg, "--rr-iterations")) {
      auto v = FlagValue(argc, argv, i, "--rr-iterations");
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &o.rr_iterations) || o.rr_iterations < 1000)
        return absl::InvalidArgumentError(absl::StrCat(
            "--rr-iterations wants an integer >= 1000 (p99.9 needs samples), got '", *v, "'"));
    } else if (IsFlag(arg, "--bulk-seconds")) {
      auto v = FlagValue(argc, argv, i, "--bulk-seconds");
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtod(*v, &o.bulk_seconds) || !(o.bulk_seconds >= 0.1) ||
          o.bulk_seconds > 3600)
        return absl::InvalidArgumentError(absl::StrCat(
            "--bulk-seconds wants a number of seconds in [0.1, 3600], got '", *v, "'"));
    } else if (IsFlag(arg, "--agent-flag")) {
      auto v = FlagValue(argc, argv, i, "--agent-flag");
      if (!v.ok()) return v.status();
      o.agent_flags.push_back(std::string(*v));
    } else if (IsFlag(arg, "--json")) {
      auto v = FlagValue(argc, argv, i, "--json");
      if (!v.ok()) return v.status();
      if (v->empty()) return absl::InvalidArgumentError("--json wants a path");
      o.json_path = *v;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown argument '", arg, "' (see --help)"));
    }
  }
  return o;
}

}  // namespace shunt::bench
