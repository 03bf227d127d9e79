#include "tools/shuntctl/args.h"

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"

namespace shunt::ctl {

const char kUsage[] = R"(usage: shuntctl [global flags] COMMAND [args]

Commands:
  status              agent, programs, map fill levels, data-path counters, config problems
  endpoints           local pods the data path knows: namespace, name, IP, netns cookie
  maps                every pinned map with its fill level
  maps dump NAME      decoded entries of one map (meta, endpoints, ep_meta, ipcache,
                      sockhash, counters, policy, identities, rules, config, flows,
                      flow_hists, services, lb_scores)
  identities          identity numbers with their namespace/serviceaccount and pods
  policy              policy entries by name: source, destination, port, verdict, TrafficTarget
  policy check --from NS/POD --to NS/POD --port N [--proto tcp|udp]
                      the verdict for one connection and which object decided it
  drops [--follow]    recent denials (enforced, or would-be in permissive mode)
  flows [--follow]    live and recently finished TCP flows of local pods: ends, path
                      (short-circuit or tcp), verdict, bytes, connect and response latency;
                      filters --from/--to IP|NS|NS/POD|NS/KIND/NAME, --port N,
                      --verdict allowed|l7|audit|denied|unmeshed, --path short-circuit|tcp,
                      --state live|closed
  stat [workload|pod|edge] [--window 30s]
                      golden metrics over the last 1..60 s: success rate, flows/s,
                      requests/s, response latency p50/p90/p99 (of finished flows)
  services            each service address, its ready backends, weight (slot share),
                      live share of the flows that went to them, and for latency-aware
                      services the EWMA latency, open connections and score
  lb explain NS/NAME  why the service's last connections went where they went: both
                      candidates of each choice, their scores, the one picked
  top [--window 30s] [--interval 2s]
                      the busiest edges, refreshed; one snapshot when piped
  uninstall           detach and unpin everything the agent installed under --bpffs

Global flags:
  --bpffs DIR         the agent's bpffs directory (default /sys/fs/bpf/shunt)
  --api-socket PATH   the agent's API socket (default /run/shunt/agent.sock)
  -o json             JSON instead of tables
  -h, --help          this text

EXAMPLES
  shuntctl status
  shuntctl --bpffs /sys/fs/bpf/shunt-demo endpoints
  shuntctl maps dump sockhash -o json
  shuntctl policy check --from demo/client --to demo/server --port 6379
  shuntctl drops --follow
  shuntctl flows --to demo/server --path tcp -o json
  shuntctl stat edge --window 60s
  shuntctl lb explain demo/server
)";

absl::StatusOr<Options> ParseArgs(int argc, const char* const* argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& flag) -> absl::StatusOr<std::string> {
      if (auto eq = a.find('='); eq != std::string::npos) return a.substr(eq + 1);
      if (i + 1 >= argc) return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
      return std::string(argv[++i]);
    };
    if (a == "-h" || a == "--help" || a == "help") {
      o.help = true;
      return o;
    } else if (a.rfind("--bpffs", 0) == 0) {
      SHUNT_ASSIGN_OR_RETURN(o.bpffs, value("--bpffs"));
    } else if (a.rfind("--api-socket", 0) == 0) {
      SHUNT_ASSIGN_OR_RETURN(o.api_socket, value("--api-socket"));
    } else if (a == "--follow" || a == "-f") {
      o.follow = true;
    } else if (a.rfind("--from", 0) == 0 || a.rfind("--to", 0) == 0 || a.rfind("--port", 0) == 0 ||
               a.rfind("--proto", 0) == 0 || a.rfind("--verdict", 0) == 0 ||
               a.rfind("--path", 0) == 0 || a.rfind("--state", 0) == 0 ||
               a.rfind("--window", 0) == 0 || a.rfind("--interval", 0) == 0) {
      const std::string name =
          a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
      SHUNT_ASSIGN_OR_RETURN(o.flags[name], value("--" + name));
    } else if (a == "-o" || a.rfind("--output", 0) == 0 || a.rfind("-o=", 0) == 0) {
      absl::StatusOr<std::string> fmt = value("-o");
      if (!fmt.ok()) return fmt.status();
      if (*fmt != "json" && *fmt != "table")
        return absl::InvalidArgumentError(absl::StrCat("-o ", *fmt, ": expected json or table"));
      o.json = *fmt == "json";
    } else if (a.size() > 1 && a[0] == '-') {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", a, " (see shuntctl --help)"));
    } else {
      o.args.push_back(a);
    }
  }
  if (o.args.empty()) return absl::InvalidArgumentError("no command given (see shuntctl --help)");
  return o;
}

}  // namespace shunt::ctl
