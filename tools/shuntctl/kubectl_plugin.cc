#include "tools/shuntctl/kubectl_plugin.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "tools/shuntctl/args.h"

namespace shunt::ctl {

const char kPluginUsage[] =
    R"usage(usage: kubectl shunt COMMAND [args] [--node NODE]
                     [--kubeconfig FILE] [--context NAME] [-n NAMESPACE]

Runs shuntctl in the Shunt agent pod on NODE (kubectl exec into its "agent"
container), where it reads that node's pinned maps and agent API: the same
output as shuntctl on the node itself.

Commands (shuntctl --help for their flags and arguments):
  status              agent, programs, map fill levels, counters, config problems
  endpoints           local pods the data path knows
  maps [dump NAME]    pinned maps with their fill levels; one map's entries
  identities          identity numbers with their namespace/serviceaccount and pods
  policy              policy entries
  policy check --from NS/POD --to NS/POD --port N [--proto tcp|udp]
                      the verdict for one connection and which object decided it
  drops [--follow]    recent denials
  flows [--follow]    live and recently finished TCP flows of the node's pods
  stat [workload|pod|edge] [--window 30s]
                      golden metrics of the node's pods
  top [--window 30s] [--interval 2s]
                      the busiest edges (refreshed when run in a terminal)
  services            service addresses and their backends as the node balances them
  lb explain NS/NAME  why the service's last connections went where they went
Not through the plugin: uninstall (docs/kubernetes.md, Uninstall).

Plugin flags (anywhere before --):
  --node NODE         the node whose agent to ask; may be left out only when
                      agents run on one node
  --kubeconfig FILE   passed to kubectl
  --context NAME      passed to kubectl
  -n, --namespace NS  the agent's namespace (default shunt-system)

kubectl: $KUBECTL when set, else the kubectl that ran the plugin when it says
($KUBECTL_PATH, set by kubectl releases since mid-2026), else kubectl on PATH.

Install: put shuntctl on PATH as kubectl-shunt, e.g.
  ln -s "$(command -v shuntctl)" /usr/local/bin/kubectl-shunt

EXAMPLES
  kubectl shunt status --node worker-1
  kubectl shunt flows --to shop/web --node worker-1 -o json
  kubectl shunt policy check --from shop/client --to shop/web --port 80 --node worker-1
  kubectl shunt drops --follow --node worker-1 --context prod
)usage";

namespace {

using nlohmann::json;

// The commands that do what they do on the node when run in the agent
// container, which has the node's bpffs, the agent's socket and the agent's
// capabilities. `uninstall` would run there too, but it would detach and
// unpin the data path under a running agent, which goes on as if it were
// installed until it restarts and installs it again: removing Shunt from a
// cluster goes through the uninstall DaemonSet (docs/kubernetes.md) instead.
const std::set<std::string> kRemoteCommands = {
    "status", "endpoints", "maps", "identities", "policy", "drops",
    "flows",  "stat",      "top",  "services",   "lb",
};

// A plugin flag: its long spelling, an optional one-letter one, and where
// its value goes.
struct PluginFlag {
  std::string long_name;   // "--node"
  std::string short_name;  // "-n" or empty
  std::string PluginArgs::*field;
};

// Whether `args[*i]` is `flag`, its value then in `value` (and *i past it):
// "--node VALUE", "--node=VALUE", "-n VALUE" or "-n=VALUE". Not pflag's
// "-nNS": "-node n1", a slip for --node, would quietly become namespace "ode".
absl::StatusOr<bool> TakeFlag(const PluginFlag& flag, const std::vector<std::string>& args,
                              size_t* i, std::string* value) {
  const std::string& a = args[*i];
  std::string spelling;
  for (const std::string& name : {flag.long_name, flag.short_name}) {
    if (name.empty()) continue;
    if (a == name) {
      if (*i + 1 >= args.size() || (args[*i + 1].size() > 1 && args[*i + 1][0] == '-'))
        return absl::InvalidArgumentError(absl::StrCat(name, " needs a value"));
      *value = args[++*i];
      spelling = name;
    } else if (absl::StartsWith(a, name + "=")) {
      *value = a.substr(name.size() + 1);
      spelling = name;
    }
    if (!spelling.empty()) break;
  }
  if (spelling.empty()) return false;
  if (value->empty()) return absl::InvalidArgumentError(absl::StrCat(spelling, " needs a value"));
  return true;
}

// A string field of a JSON object, "" when absent or not a string.
std::string Str(const json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

struct AgentPod {
  std::string name, node, phase, created;
};

std::string Searched(const std::string& namespace_) {
  return absl::StrCat("pods labelled ", kAgentLabel, " in namespace ", namespace_);
}

// "a, b, c" with at most `max` names, then "and N more".
std::string NameList(const std::vector<std::string>& names, size_t max = 20) {
  if (names.size() <= max) return absl::StrJoin(names, ", ");
  return absl::StrCat(absl::StrJoin(names.begin(), names.begin() + max, ", "), " and ",
                      names.size() - max, " more");
}

}  // namespace

bool IsPluginInvocation(absl::string_view argv0) {
  const size_t slash = argv0.rfind('/');
  return argv0.substr(slash == absl::string_view::npos ? 0 : slash + 1) == kPluginName;
}

absl::StatusOr<PluginArgs> ParsePluginArgs(const std::vector<std::string>& args) {
  const PluginFlag flags[] = {
      {"--node", "", &PluginArgs::node},
      {"--kubeconfig", "", &PluginArgs::kubeconfig},
      {"--context", "", &PluginArgs::context},
      {"--namespace", "-n", &PluginArgs::namespace_},
  };
  PluginArgs p;
  std::set<std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {  // shuntctl's own end of flags: the rest is its, untouched
      p.shuntctl_args.insert(p.shuntctl_args.end(), args.begin() + i, args.end());
      break;
    }
    bool taken = false;
    for (const PluginFlag& f : flags) {
      std::string value;
      absl::StatusOr<bool> t = TakeFlag(f, args, &i, &value);
      if (!t.ok()) return t.status();
      if (!*t) continue;
      if (!given.insert(f.long_name).second)
        return absl::InvalidArgumentError(absl::StrCat(f.long_name, " given twice"));
      p.*f.field = value;
      taken = true;
      break;
    }
    if (!taken) p.shuntctl_args.push_back(args[i]);
  }

  // The rest must be a shuntctl command line that works remotely.
  std::vector<const char*> argv = {"kubectl shunt"};
  for (const std::string& a : p.shuntctl_args) argv.push_back(a.c_str());
  absl::StatusOr<Options> o = ParseArgs(static_cast<int>(argv.size()), argv.data());
  if (!o.ok()) return o.status();
  if (o->help) {
    p.help = true;
    return p;
  }
  const std::string& command = o->args[0];
  if (command == "uninstall")
    return absl::InvalidArgumentError(
        "uninstall does not run through kubectl shunt: it would remove the data path under a "
        "running agent; remove Shunt from the cluster as docs/kubernetes.md (Uninstall) says");
  if (kRemoteCommands.count(command) == 0)
    return absl::InvalidArgumentError(absl::StrCat("unknown command '", command, "'"));
  return p;
}

absl::StatusOr<PodChoice> ChooseAgentPod(absl::string_view kubectl_get_json,
                                         const std::string& node, const std::string& namespace_) {
  const json list = json::parse(kubectl_get_json.begin(), kubectl_get_json.end(), nullptr, false);
  if (list.is_discarded() || !list.is_object() || !list.contains("items") ||
      !list["items"].is_array())
    return absl::InvalidArgumentError(
        absl::StrCat("kubectl get pods printed something that is not a JSON list of pods: ",
                     std::string(kubectl_get_json.substr(0, 200))));
  std::vector<AgentPod> pods;
  for (const json& item : list["items"]) {
    const json empty = json::object();
    const json& meta = item.is_object() && item.contains("metadata") ? item["metadata"] : empty;
    const json& spec = item.is_object() && item.contains("spec") ? item["spec"] : empty;
    const json& status = item.is_object() && item.contains("status") ? item["status"] : empty;
    AgentPod p{Str(meta, "name"), Str(spec, "nodeName"), Str(status, "phase"),
               Str(meta, "creationTimestamp")};
    // The field selector did the filtering already; this keeps the choice
    // right whatever the server does with it.
    if (!p.name.empty() && (node.empty() || p.node == node)) pods.push_back(std::move(p));
  }

  std::string chosen_node = node;
  if (node.empty()) {
    std::set<std::string> nodes;
    for (const AgentPod& p : pods)
      if (!p.node.empty()) nodes.insert(p.node);
    if (pods.empty())
      return absl::NotFoundError(absl::StrCat(
          "no Shunt agent pods: found no ", Searched(namespace_),
          "; is the agent deployed (kubectl apply -k deploy/kubernetes), or in another "
          "namespace (-n)?"));
    if (nodes.empty())
      return absl::UnavailableError(absl::StrCat("no Shunt agent pod is on a node yet (",
                                                 Searched(namespace_),
                                                 "): pass --node NODE "
                                                 "once they are scheduled"));
    if (nodes.size() > 1)
      return absl::FailedPreconditionError(
          absl::StrCat("Shunt agents run on ", nodes.size(), " nodes (",
                       NameList(std::vector<std::string>(nodes.begin(), nodes.end())),
                       "): pass --node NODE to say which one to ask"));
    chosen_node = *nodes.begin();
  }

  std::vector<AgentPod> on_node, running;
  for (const AgentPod& p : pods)
    if (p.node == chosen_node) on_node.push_back(p);
  if (on_node.empty())
    return absl::NotFoundError(absl::StrCat("no Shunt agent pod on node ", chosen_node,
                                            ": found no ", Searched(namespace_),
                                            " there; is the node name right (kubectl get nodes)?"));
  for (const AgentPod& p : on_node)
    if (p.phase == "Running") running.push_back(p);
  if (running.empty()) {
    std::vector<std::string> states;
    for (const AgentPod& p : on_node)
      states.push_back(absl::StrCat(p.name, " (", p.phase.empty() ? "no phase" : p.phase, ")"));
    return absl::UnavailableError(absl::StrCat(
        "no Shunt agent pod on node ", chosen_node, " is Running: ", NameList(states),
        "; kubectl describe pod -n ", namespace_, " ", on_node.front().name, " says why"));
  }
  // Newest first. RFC 3339 timestamps in UTC ("2026-12-05T14:00:00Z") sort
  // as strings; the name breaks ties so that the choice is deterministic.
  std::sort(running.begin(), running.end(), [](const AgentPod& a, const AgentPod& b) {
    return std::tie(a.created, a.name) > std::tie(b.created, b.name);
  });
  PodChoice choice{running.front().name, chosen_node, ""};
  if (running.size() > 1) {
    std::vector<std::string> names;
    for (const AgentPod& p : running) names.push_back(p.name);
    choice.note =
        absl::StrCat(running.size(), " Shunt agent pods are Running on node ", chosen_node, " (",
                     NameList(names), "), as during a rollout; using the newest, ", choice.pod);
  }
  return choice;
}

namespace {

// --kubeconfig and --context as given, for every kubectl command.
std::vector<std::string> ConnectionArgv(const PluginArgs& args) {
  std::vector<std::string> out;
  if (!args.kubeconfig.empty()) out.insert(out.end(), {"--kubeconfig", args.kubeconfig});
  if (!args.context.empty()) out.insert(out.end(), {"--context", args.context});
  return out;
}

}  // namespace

std::vector<std::string> GetPodsArgv(const PluginArgs& args) {
  std::vector<std::string> out = ConnectionArgv(args);
  out.insert(out.end(), {"get", "pods", "-n", args.namespace_, "-l", kAgentLabel});
  if (!args.node.empty())
    out.insert(out.end(), {"--field-selector", absl::StrCat("spec.nodeName=", args.node)});
  out.insert(out.end(), {"-o", "json"});
  return out;
}

std::vector<std::string> ExecArgv(const PluginArgs& args, const std::string& pod, bool terminal) {
  std::vector<std::string> out = ConnectionArgv(args);
  out.push_back("exec");
  if (terminal) out.insert(out.end(), {"-i", "-t"});
  out.insert(out.end(), {"-n", args.namespace_, pod, "-c", kAgentContainer, "--", "shuntctl"});
  out.insert(out.end(), args.shuntctl_args.begin(), args.shuntctl_args.end());
  return out;
}

}  // namespace shunt::ctl
