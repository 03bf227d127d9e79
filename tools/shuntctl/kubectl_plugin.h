// shuntctl as a kubectl plugin: run as `kubectl-shunt` (kubectl runs
// `kubectl shunt ARGS` as `kubectl-shunt ARGS`), it finds the Shunt agent pod
// on a node and runs `shuntctl ARGS` in that pod's agent container through
// `kubectl exec`, where shuntctl sees that node's pins and agent socket.
//
// This file owns the decisions, as pure functions the unit tests call: which
// arguments are the plugin's, which pod to use from `kubectl get pods -o
// json`, and the kubectl command lines. kubectl_plugin_run.cc runs them.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shunt::ctl {

// The name kubectl finds the plugin by; argv[0]'s basename selects plugin mode.
inline constexpr char kPluginName[] = "kubectl-shunt";
// Where deploy/kubernetes puts the agent, and what its pods carry and run.
inline constexpr char kAgentNamespace[] = "shunt-system";
inline constexpr char kAgentLabel[] = "app.kubernetes.io/name=shunt-agent";
inline constexpr char kAgentContainer[] = "agent";

// `kubectl shunt --help`.
extern const char kPluginUsage[];

// True when argv[0] (a path or a bare name) is kubectl-shunt.
bool IsPluginInvocation(absl::string_view argv0);

struct PluginArgs {
  std::string node;                          // --node; empty: the only node with an agent
  std::string kubeconfig;                    // --kubeconfig, passed to kubectl
  std::string context;                       // --context, passed to kubectl
  std::string namespace_ = kAgentNamespace;  // -n/--namespace: the agent's namespace
  std::vector<std::string> shuntctl_args;    // what the remote shuntctl gets, in order
  bool help = false;                         // -h, --help or help: print kPluginUsage
};

// The plugin's command line (argv[0] excluded). --node, --kubeconfig,
// --context and -n/--namespace are taken wherever they stand before `--`,
// as `--flag VALUE` or `--flag=VALUE` (-n: `-n NS`, `-n=NS`); everything else is
// shuntctl's, checked here with shuntctl's own parser so that a mistake is
// reported before any round trip to the cluster. InvalidArgumentError naming
// the flag when a plugin flag lacks its value or is given twice; shuntctl's
// message for a bad shuntctl flag; "no command given" for an empty command
// line; and for a command that does not work through the plugin (unknown,
// or `uninstall`), a message saying why.
absl::StatusOr<PluginArgs> ParsePluginArgs(const std::vector<std::string>& args);

// The agent pod to exec into, chosen from `kubectl get pods -o json`.
struct PodChoice {
  std::string pod;
  std::string node;
  // Not empty when the choice was not the only one (several Running agent
  // pods on the node, as during a rollout): a line for stderr saying which.
  std::string note;
};

// Chooses from the List that `kubectl get pods` printed (GetPodsArgv's
// command; with `node` set, already narrowed to that node). Only Running
// pods count; of several on the node, the newest (creationTimestamp, then
// name). With `node` empty, the node is the only one that has agent pods.
// Errors, each naming `namespace_` and kAgentLabel as what was searched:
//   InvalidArgumentError: the output is not a JSON List of pods;
//   NotFoundError: no agent pod on `node` (or, without a node, anywhere);
//   FailedPreconditionError: no node given and agents on several nodes (the
//     message lists them and says to pass --node);
//   UnavailableError: agent pods on the node, none Running (their phases).
absl::StatusOr<PodChoice> ChooseAgentPod(absl::string_view kubectl_get_json,
                                         const std::string& node, const std::string& namespace_);

// kubectl's arguments (without the program) to list the agent pods: on
// args.node when set, else everywhere in the namespace; -o json.
std::vector<std::string> GetPodsArgv(const PluginArgs& args);

// kubectl's arguments (without the program) to run shuntctl in `pod`'s agent
// container: `exec -n NS POD -c agent -- shuntctl ARGS...`, after the
// connection flags given. `terminal` (stdin and stdout are terminals) adds
// `-i -t`, as `kubectl exec -it` would: `top` then refreshes in place and
// Ctrl-C reaches the remote `--follow` instead of leaving it running.
std::vector<std::string> ExecArgv(const PluginArgs& args, const std::string& pod, bool terminal);

// The kubectl to run, from the values of $KUBECTL, $KUBECTL_PATH and $PATH
// (nullptr when unset): $KUBECTL when set (a path, or a name looked up in
// PATH); else $KUBECTL_PATH, which kubectl releases since mid-2026 set to
// themselves when they run a plugin (older ones tell a plugin nothing);
// else `kubectl` on PATH. A $KUBECTL_PATH that is not an executable file is
// passed over (it may be left over in an exported environment). NotFoundError
// naming the $KUBECTL that is not an executable file, or saying that
// kubectl-shunt is a kubectl plugin and needs kubectl on PATH.
absl::StatusOr<std::string> FindKubectl(const char* kubectl_env, const char* kubectl_path_env,
                                        const char* path_env);

// `kubectl-shunt ARGS`: main() for plugin mode. Returns the exit code of a
// failure before kubectl exec (2: command line, 1: anything else); on
// success it does not return, kubectl exec replaces the process, so its
// exit status (the remote shuntctl's) is the plugin's.
int RunKubectlPlugin(int argc, char** argv);

}  // namespace shunt::ctl
