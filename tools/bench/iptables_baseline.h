// The iptables baseline of shunt-service-bench: the rules kube-proxy would
// install for the benchmark's services, loaded into the node's network
// namespace around each iptables round and removed after it.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace shunt::bench {

// What kube-proxy (iptables mode, v1.29) installs for `n` ClusterIP
// services (ServiceVip(0..n-1)) with the same endpoints each, in
// iptables-restore format.
std::string KubeProxyRules(int n, const std::vector<std::string>& pod_ips,
                           const std::string& cluster_cidr);

// Loads `rules_file` (KubeProxyRules) with iptables-restore in the network
// namespace `netns`, first emptying its conntrack table if `flush_conntrack`.
// An error status from the failing command.
absl::Status LoadKubeProxyRules(const std::string& netns, const std::string& rules_file,
                                bool flush_conntrack);

// Deletes the nat and filter tables LoadKubeProxyRules made.
absl::Status DeleteKubeProxyTables(const std::string& netns);

}  // namespace shunt::bench
