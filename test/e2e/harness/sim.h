// Simulated nodes and pods on one kernel (DESIGN.md "Testing on one
// machine"): a node is a network namespace that routes for its pods, a cgroup
// subtree, a bpffs directory, a config directory and an agent; a pod is a
// network namespace with a veth pair to its node and a cgroup of its own.
// Everything a TestNode creates is torn down in its destructor, and
// SweepStale() removes what a killed test run left behind.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/lib/counters.h"
#include "agent/lib/unique_fd.h"
#include "nlohmann/json.hpp"

namespace shunt::kubeapi {
class FakeApiServer;
}

namespace shunt::e2e {

// Runs `cmd` with /bin/sh; InternalError with its output when it fails.
absl::StatusOr<std::string> Sh(const std::string& cmd);

// Removes namespaces, cgroups and pins of earlier test processes that are
// gone (names carry the owning pid).
void SweepStale();

// Why this test cannot run here, or empty: root and BPF are needed.
std::string PrivilegedSkipReason();

struct TestPod {
  std::string name;  // Kubernetes name
  std::string namespace_;
  std::string service_account;
  std::string netns;  // /run/netns/<netns>
  std::string ip;
  std::string ip6;        // dual-stack pods (PodSpec::ipv6): its IPv6 address, else empty
  std::string uid;        // metadata.uid; the cgroup is <cgroup root>/pod<uid>
  std::string cgroup;     // absolute path
  pid_t sandbox_pid = 0;  // the pod's pause process (the oldest in its cgroup)
  std::string host_veth;  // node-side interface, in the node namespace
  std::map<std::string, std::string> annotations;  // metadata.annotations
};

struct PodSpec {
  std::string name;
  std::string namespace_ = "default";
  std::string service_account = "default";
  bool in_config = true;  // false: a pod the agent does not know about
  // Dual stack: an IPv6 address too (fd00:0:<node subnet>::1:<n>), in
  // status.podIPs, routed by the node like the IPv4 one.
  bool ipv6 = false;
  std::map<std::string, std::string> annotations;  // metadata.annotations
};

class TestNode {
 public:
  // `tag` keeps several nodes of one test apart ("n1", "n2").
  static absl::StatusOr<std::unique_ptr<TestNode>> Create(const std::string& tag);
  ~TestNode();

  absl::StatusOr<TestPod*> AddPod(const PodSpec& spec);
  // The pod restarts: its network namespace is deleted and made anew with
  // the same address (a new netns cookie), as a CNI does for a new sandbox.
  absl::Status RecreatePodNetwork(const TestPod& pod);
  // The node's agent reads the (fake) API server instead of its config
  // directory (--source=kube): pods are published there, not to pods.yaml.
  // Call before adding pods; `server` outlives the node.
  // `kubeconfig`: another than the server's own (one that reaches it from
  // another node's namespace).
  void UseApiServer(kubeapi::FakeApiServer* server, std::string kubeconfig = "") {
    api_server_ = server;
    kubeconfig_ = std::move(kubeconfig);
  }
  // This node's address on its link to another node (after Link()).
  const std::string& link_ip() const { return link_ip_; }
  const std::string& link_ip6() const { return link_ip6_; }
  // (Re)writes pods.yaml in the config directory from the pods added so far,
  // plus the pods of `others` (remote nodes, as a cluster-wide source sees
  // them); with an API server, applies those pods there instead.
  absl::Status WriteManifests(const std::vector<const TestNode*>& others = {});
  // WriteManifests, then waits until the running agent has applied it (as
  // ApplyConfigFile does).
  absl::Status ApplyManifests(const std::vector<const TestNode*>& others = {},
                              int timeout_ms = 5000);
  // Joins two nodes' namespaces with a veth pair and routes each node's pod
  // subnet through it, so pods on different nodes can talk.
  static absl::Status Link(TestNode& a, TestNode& b);
  absl::Status WriteConfigFile(const std::string& file, const std::string& yaml);
  // Writes the file and waits until the agent has applied it: its status
  // reports a newer object generation than before the write (every write
  // the agent reads publishes one). That newer generation is this write's
  // only if no earlier write was still unread: once the agent runs, write
  // through ApplyConfigFile / ApplyManifests only. WriteConfigFile is for
  // files in place before StartAgent.
  absl::Status ApplyConfigFile(const std::string& file, const std::string& yaml,
                               int timeout_ms = 5000);
  // The object generation the agent has applied (status "generation").
  absl::StatusOr<uint64_t> AppliedGeneration();
  // Waits until the applied generation is past `after`.
  absl::Status WaitGeneration(uint64_t after, int timeout_ms = 5000);

  absl::Status StartAgent(const std::vector<std::string>& extra_flags = {});
  // Sends `sig` and waits for the agent to exit.
  absl::Status StopAgent(int sig);
  // Waits until the agent reports every in-config local pod meshed.
  absl::Status WaitMeshed(int timeout_ms = 10000);
  absl::StatusOr<nlohmann::json> AgentStatus();
  std::string AgentLog() const;
  pid_t agent_pid() const { return agent_pid_; }

  // Data-path counters from the pins.
  absl::StatusOr<lib::Counters> Counters() const;
  absl::StatusOr<uint64_t> SockhashEntries() const;
  // Flows kept off or moved off the short-circuit, by enum shunt_tcp_reason.
  absl::StatusOr<std::vector<uint64_t>> TcpReasonCounts() const;
  // Short-circuited sockets still recorded for the slow-reader check; sockops
  // removes each one when it sees the socket close.
  absl::StatusOr<uint64_t> SockrefEntries() const;

  // A socket created inside the pod (its netns and cgroup), owned by the caller.
  absl::StatusOr<lib::UniqueFd> PodSocket(const TestPod& pod, int type, int domain = AF_INET,
                                          int protocol = 0) const;
  // `count` of them, made by one child (each PodSocket forks the test).
  absl::StatusOr<std::vector<lib::UniqueFd>> PodSockets(const TestPod& pod, int type, int count,
                                                        int domain = AF_INET) const;
  // A socket of a "host process": the node namespace, the node's cgroup root.
  absl::StatusOr<lib::UniqueFd> NodeSocket(int type, int domain = AF_INET, int protocol = 0) const;
  // Starts argv inside the pod; stdout+stderr go to `log_file`.
  absl::StatusOr<pid_t> Spawn(const TestPod& pod, const std::vector<std::string>& argv,
                              const std::string& log_file);
  // Starts argv as a host process of the node (its network namespace, the
  // node's cgroup root): what a node's daemon sees (a collector, ...).
  absl::StatusOr<pid_t> SpawnInNode(const std::vector<std::string>& argv,
                                    const std::string& log_file);
  // Bytes the node side of the pod's veth sent and received.
  absl::StatusOr<uint64_t> VethBytes(const TestPod& pod) const;

  const std::string& bpffs() const { return bpffs_; }
  const std::string& cgroup_root() const { return cgroup_root_; }
  const std::string& config_dir() const { return config_dir_; }
  const std::string& api_socket() const { return api_socket_; }
  const std::string& node_netns() const { return node_netns_; }
  const std::string& name() const { return name_; }
  const std::string& work_dir() const { return work_dir_; }
  const std::vector<std::unique_ptr<TestPod>>& pods() const { return pods_; }

 private:
  TestNode() = default;
  absl::StatusOr<lib::UniqueFd> SocketIn(const std::string& netns_path, const std::string& cgroup,
                                         int type, int domain = AF_INET, int protocol = 0) const;

  absl::StatusOr<pid_t> SpawnIn(const std::string& netns, const std::string& procs,
                                const std::vector<std::string>& argv, const std::string& log_file);

  std::string tag_, name_, prefix_;
  std::string node_netns_, cgroup_root_, bpffs_, config_dir_, api_socket_, work_dir_;
  int subnet_ = 0;  // pods are 10.<subnet_>.1.x
  std::string PodYaml() const;
  std::vector<nlohmann::json> PodObjects() const;
  kubeapi::FakeApiServer* api_server_ = nullptr;
  std::string kubeconfig_, link_ip_, link_ip6_;
  absl::Status SetUpPodNetwork(const TestPod& pod);
  absl::Status StartSandbox(TestPod& pod);

  std::vector<std::unique_ptr<TestPod>> pods_;
  std::vector<pid_t> children_;
  pid_t agent_pid_ = -1;
  std::vector<pid_t> agent_groups_;  // process groups of the agents started (and their proxies)
};

// Kills `pid` (SIGKILL) and reaps it; no-op for <= 0.
void KillAndReap(pid_t pid);
// Waits for `pid` up to timeout; returns its exit status, or DeadlineExceeded.
absl::StatusOr<int> WaitExit(pid_t pid, int timeout_ms);

}  // namespace shunt::e2e
