// The policy routing that lets the node's proxy connect to a local pod from
// the remote client pod's own address (IP_TRANSPARENT; docs/mtls.md "What
// the pod sees"): the pod's replies go to an address that is not the
// node's, so the TC guard marks those that belong to a proxy socket
// (SHUNT_MTLS_REPLY_MARK) and this rule delivers marked packets locally:
//   ip rule add fwmark 0x5349 lookup 5348 pref 5348
//   ip route add local 0.0.0.0/0 dev lo table 5348
// and the same for IPv6 (ip -6 rule ...; local ::/0), skipped on a node
// without IPv6.
#pragma once

#include "absl/status/status.h"
#include "shunt/abi/mtls.h"

namespace shunt::mtls {

inline constexpr uint32_t kProxyRouteTable = 5348;

// Adds the rule and the route in the current network namespace; already
// present is fine. Errors name the netlink request.
absl::Status EnsureTransparentRouting();
// Removes them (absent is fine).
absl::Status RemoveTransparentRouting();

}  // namespace shunt::mtls
