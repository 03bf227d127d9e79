#include "tools/bench/options.h"

#include <cstring>
#include <string_view>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shunt::bench {

const char kUsage[] = R"(usage: shunt-bench [--rr-iterations N] [--bulk-seconds S] [--json PATH]

Measures pod-to-pod TCP on one simulated node three ways, one after the other,
each with fresh connections:
  kernel   plain TCP through the node namespace, no agent
  shunt    the same with shunt-agent running (sockets short-circuited)
  haproxy  agent uninstalled; client -> haproxy (client pod) -> haproxy (server
           pod) -> server, a two-sidecar chain
Holds /dev/cpu_dma_latency at 0 for the whole run. Needs root and haproxy.

Flags:
  --rr-iterations N   sampled 64-byte round trips per path (default 50000;
                      2000 warm-up round trips come first)
  --bulk-seconds S    duration of the one-stream bulk test per path (default 3)
  --json PATH         where to write the results (default bench-results.json)
  -h, --help          this text

EXAMPLES
  sudo build/tools/bench/shunt-bench
  sudo build/tools/bench/shunt-bench --rr-iterations 200000 --bulk-seconds 10 --json /tmp/b.json
)";

namespace {

// "--flag=value" or "--flag value": the value, advancing i for the latter.
absl::StatusOr<std::string> FlagValue(int argc, char** argv, int& i, std::string_view name) {
  std::string_view arg = argv[i];
  if (arg.size() > name.size() && arg[name.size()] == '=') return std::string(arg.substr(name.size() + 1));
  if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
  return std::string(argv[++i]);
}

bool IsFlag(std::string_view arg, std::string_view name) {
  return arg == name || (arg.size() > name.size() && arg.substr(0, name.size()) == name &&
                         arg[name.size()] == '=');
}

}  // namespace

absl::StatusOr<Options> ParseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (IsFlag(arg, "--rr-iterations")) {
      auto v = FlagValue(argc, argv, i, "--rr-iterations");
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtoi(*v, &o.rr_iterations) || o.rr_iterations < 1000)
        return absl::InvalidArgumentError(
            absl::StrCat("--rr-iterations wants an integer >= 1000 (p99.9 needs samples), got '",
                         *v, "'"));
    } else if (IsFlag(arg, "--bulk-seconds")) {
      auto v = FlagValue(argc, argv, i, "--bulk-seconds");
      if (!v.ok()) return v.status();
      if (!absl::SimpleAtod(*v, &o.bulk_seconds) || !(o.bulk_seconds >= 0.1) ||
          o.bulk_seconds > 3600)
        return absl::InvalidArgumentError(
            absl::StrCat("--bulk-seconds wants a number of seconds in [0.1, 3600], got '", *v, "'"));
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
