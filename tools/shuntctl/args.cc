#include "tools/shuntctl/args.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "tools/common/flag_set.h"

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
                      --verdict allowed|l7|audit|denied|unmeshed, --path short-circuit|tcp|mtls|l7,
                      --state live|closed
  stat [workload|pod|edge|route] [--window 30s]
                      golden metrics over the last 1..60 s: success rate, flows/s,
                      requests/s, response latency p50/p90/p99 (of finished flows; of
                      requests where the L7 layer carried them); route: HTTP requests
                      per destination and route, denied, retries
  services            each service address, its ready backends, weight (slot share),
                      live share of the flows that went to them, and for latency-aware
                      services the EWMA latency, open connections and score
  lb explain NS/NAME  why the service's last connections went where they went: both
                      candidates of each choice, their scores, the one picked
  top [--window 30s] [--interval 2s]
                      the busiest edges and HTTP routes, refreshed; one snapshot when piped
  uninstall           detach and unpin everything the agent installed under --bpffs
  ca init --dir DIR   create a cluster CA for mutual TLS: DIR/ca.crt and DIR/ca.key
                      (ECDSA P-256, key mode 0600); never overwrites an existing CA
  certs               the workload certificates of local identities (SPIFFE ID, serial,
                      expiry, renewal), from the agent (shunt-agent --mtls, --ca-dir)
  certs rotate        issue every certificate anew now; open tunnels finish with the old

Global flags:
  --bpffs DIR         the agent's bpffs directory (default /sys/fs/bpf/shunt)
  --api-socket PATH   the agent's API socket (default /run/shunt/agent.sock)
  -o json             JSON instead of tables
  -h, --help          this text

Installed as kubectl-shunt (a symlink), it is a kubectl plugin that runs these
commands in the agent pod of a node: kubectl shunt --help.

EXAMPLES
  shuntctl status
  shuntctl --bpffs /sys/fs/bpf/shunt-demo endpoints
  shuntctl maps dump sockhash -o json
  shuntctl policy check --from demo/client --to demo/server --port 6379
  shuntctl drops --follow
  shuntctl flows --to demo/server --path tcp -o json
  shuntctl stat edge --window 60s
  shuntctl lb explain demo/server
  shuntctl ca init --dir /etc/shunt/ca
)";

namespace {

// The flags each command reads besides the global ones (--bpffs,
// --api-socket, -o): any other is a mistake to report, not to ignore.
struct CommandFlags {
  const char* command;  // "policy check": the command and its verb
  std::vector<std::string> flags;
};
// clang-format off
const CommandFlags kCommandFlags[] = {
    {"status", {}},
    {"endpoints", {}},
    {"maps", {}},
    {"identities", {}},
    {"policy", {}},
    {"policy check", {"from", "to", "port", "proto"}},
    {"drops", {"follow"}},
    {"flows", {"follow", "from", "to", "port", "verdict", "path", "state"}},
    {"stat", {"window"}},
    {"top", {"window", "interval"}},
    {"services", {}},
    {"lb", {}},
    {"uninstall", {}},
    {"ca init", {"dir"}},
    {"certs", {}},
    {"certs rotate", {}},
};
// clang-format on

// The command `args` name (args[0], with args[1] for "policy check"), or
// nullptr for an unknown one, which the caller reports.
const CommandFlags* CommandOf(const std::vector<std::string>& args) {
  std::string command = args[0];
  if (command == "policy" && args.size() >= 2 && args[1] == "check") command = "policy check";
  if (command == "ca" && args.size() >= 2 && args[1] == "init") command = "ca init";
  if (command == "certs" && args.size() >= 2 && args[1] == "rotate") command = "certs rotate";
  for (const CommandFlags& c : kCommandFlags)
    if (command == c.command) return &c;
  return nullptr;
}

}  // namespace

absl::StatusOr<Options> ParseArgs(int argc, const char* const* argv) {
  Options o;
  std::string output = "table";
  int port = 0;
  std::map<std::string, std::string> values;  // the string-valued command flags
  cli::FlagSet flags;
  flags.String("bpffs", &o.bpffs);
  flags.String("api-socket", &o.api_socket);
  flags.Choice("output", &output, {"json", "table"}).Short('o');
  flags.Bool("follow", &o.follow).Short('f');
  for (const char* name : {"from", "to", "proto", "window", "interval", "dir"})
    flags.String(name, &values[name]);
  flags.Int("port", &port, 1, 65535);
  flags.Choice("verdict", &values["verdict"], {"allowed", "l7", "audit", "denied", "unmeshed"});
  flags.Choice("path", &values["path"], {"short-circuit", "tcp", "mtls", "l7"});
  flags.Choice("state", &values["state"], {"live", "closed"});

  absl::StatusOr<cli::FlagSet::Result> r = flags.Parse(argc, argv);
  if (!r.ok()) return r.status();
  // "shuntctl help", even after the command ("shuntctl policy help").
  o.help = r->help || std::find(r->args.begin(), r->args.end(), "help") != r->args.end();
  if (o.help) return o;
  if (r->args.empty()) return absl::InvalidArgumentError("no command given");
  o.args = std::move(r->args);
  o.json = output == "json";
  values["port"] = absl::StrCat(port);
  const CommandFlags* command = CommandOf(o.args);
  for (const std::string& name : r->set) {
    if (name == "bpffs" || name == "api-socket" || name == "output" || command == nullptr) continue;
    if (std::find(command->flags.begin(), command->flags.end(), name) == command->flags.end())
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " does not apply to '", command->command, "'"));
    if (name != "follow") o.flags[name] = values[name];
  }
  return o;
}

}  // namespace shunt::ctl
