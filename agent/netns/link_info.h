// One network interface as rtnetlink reports it in the calling thread's
// namespace: enough to pair a pod's veth end with its node-side peer.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shunt::netns {

struct LinkInfo {
  int ifindex = 0;
  std::string name;
  int link = 0;                   // IFLA_LINK: for a veth, the peer's ifindex
  bool peer_in_other_ns = false;  // IFLA_LINK_NETNSID present
};

// NotFound if no such interface.
absl::StatusOr<LinkInfo> GetLink(int ifindex);

// The interfaces of the calling thread's namespace whose peer (a veth's
// other end) lives in the namespace at `netns_path`: a pod's node-side
// veth, found from the node's side, so nothing the pod does to its own
// interfaces or addresses changes the answer. Empty when the namespace has
// no id here (no link to it).
absl::StatusOr<std::vector<int>> LinksWithPeerIn(const std::string& netns_path);

}  // namespace shunt::netns
