// One network interface as rtnetlink reports it in the calling thread's
// namespace: enough to pair a pod's veth end with its node-side peer.
#pragma once

#include <string>

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

}  // namespace shunt::netns
