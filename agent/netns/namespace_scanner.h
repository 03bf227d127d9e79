// The endpoints controller's view of the machine: each local pod's sandbox,
// found through its kubelet cgroup (pod_cgroups.h), behind an interface so
// the controller can be tested without entering any namespace.
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/netns/link_info.h"
#include "agent/netns/netns_scanner.h"

namespace shunt::netns {

// One local pod's sandbox as the kubelet's cgroup shows it.
struct PodSandbox {
  std::string cgroup;  // its pod cgroup
  pid_t pid = 0;       // the cgroup's oldest process: the sandbox's pause process
  NetnsProbe netns;    // the namespace that process is in: cookie, addresses
  // Node-side interfaces whose peer is in that namespace (its veth), found
  // from the node's side.
  std::vector<int> host_ifindexes;
  std::string problem;  // why the sandbox was not found; the rest is empty then
};

class NamespaceScanner {
 public:
  virtual ~NamespaceScanner() = default;
  // The pods with a cgroup and their oldest process, by pod UID: cheap (no
  // namespace is entered), to notice a sandbox that came, went or was
  // replaced.
  virtual std::map<std::string, pid_t> SandboxPids() = 0;
  // The sandboxes of `uids`, one entry each (a problem when not found). An
  // error only when nothing could be probed at all.
  virtual absl::StatusOr<std::map<std::string, PodSandbox>> Sandboxes(
      const std::set<std::string>& uids) = 0;
  virtual absl::StatusOr<LinkInfo> Link(int ifindex) = 0;
};

// This machine's: pod cgroups under `cgroup_root`, /proc, links by netlink.
class SystemNamespaceScanner : public NamespaceScanner {
 public:
  explicit SystemNamespaceScanner(std::string cgroup_root, std::string proc_dir = "/proc")
      : cgroup_root_(std::move(cgroup_root)), proc_dir_(std::move(proc_dir)) {}
  std::map<std::string, pid_t> SandboxPids() override;
  absl::StatusOr<std::map<std::string, PodSandbox>> Sandboxes(
      const std::set<std::string>& uids) override;
  absl::StatusOr<LinkInfo> Link(int ifindex) override { return GetLink(ifindex); }

 private:
  std::string cgroup_root_, proc_dir_;
};

}  // namespace shunt::netns
