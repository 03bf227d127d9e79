// Pure planning: from the pods in the config and their sandboxes found on
// this kernel (by kubelet cgroup, netns/namespace_scanner.h), the exact contents the endpoints,
// endpoint-meta and ipcache maps should have. No kernel access, so it is unit-tested directly.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/endpoints/identity_allocator.h"
#include "agent/model/namespace.h"
#include "agent/model/pod.h"
#include "agent/netns/namespace_scanner.h"
#include "shunt/abi/endpoint.h"

namespace shunt::endpoints {

using Ip6 = std::array<uint8_t, 16>;  // an IPv6 address, network order

struct EndpointEntry {
  shunt_endpoint ep{};
  shunt_endpoint_meta meta{};
};

struct LocalPodStatus {
  std::string key;  // namespace/name
  std::string uid;
  std::string ip;
  uint32_t ip_be = 0;         // the same, network order
  std::string ip6;            // its IPv6 address (status.podIPs), if any
  Ip6 ip6_bytes{};            // the same, all zero when none
  std::string cgroup;         // its kubelet cgroup, once found
  pid_t pid = 0;              // the sandbox process whose namespace it is in
  uint64_t netns_cookie = 0;  // 0 while unresolved
  std::string netns_path;
  // Node side of its veth(s), in the agent's namespace; empty if none.
  std::vector<int> host_ifindexes;
  std::string problem;  // why it is not (yet) meshed; empty when it is
};

struct Plan {
  std::map<uint64_t, EndpointEntry> endpoints;      // by netns cookie
  std::map<uint32_t, shunt_ipcache_entry> ipcache;  // by IPv4, network order
  std::map<Ip6, shunt_ipcache_entry> ipcache6;      // the same by IPv6 address
  std::vector<LocalPodStatus> local_pods;           // in config order
  std::set<IdentityAllocator::Key> identities;      // every pod's (namespace, SA)
  // Remote pods left out of the ipcache: their namespace's share is taken
  // (local ones say so in their LocalPodStatus::problem).
  std::vector<std::string> over_share;
};

struct PlanInput {
  std::string node;
  const std::vector<model::Pod>* pods = nullptr;
  // Namespaces annotated shunt.dev/short-circuit: "off" (null: none).
  const std::vector<model::Namespace>* namespaces = nullptr;
  // The sandboxes of local pods, by uid (every local pod with a uid has an
  // entry, maybe with a problem).
  const std::map<std::string, netns::PodSandbox>* sandboxes = nullptr;
  uint64_t own_netns_cookie = 0;  // the agent's own namespace is never a pod's
  // ipcache entries (pod addresses, IPv4 and IPv6) one namespace's pods may
  // take; pods on this node are counted first, then the others in order.
  uint32_t ipcache_per_namespace = SHUNT_MAX_IPCACHE / 4;
};

// Allocates identities for new (namespace, SA) pairs but frees none: the
// caller retains the union of what the plan and the policy use.
Plan MakePlan(const PlanInput& in, IdentityAllocator& ids);

}  // namespace shunt::endpoints
