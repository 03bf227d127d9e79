#include "pin_layout.h"

#include "absl/strings/str_cat.h"
#include "shunt/abi/pins.h"

namespace shunt::lib {

const std::vector<MapDescription>& PinnedMapList() {
  static const std::vector<MapDescription> kMaps = {
      {SHUNT_MAP_META, "ABI version and install time"},
      {SHUNT_MAP_ENDPOINTS, "local pods: netns cookie -> IPv4, IPv6, identity, flags"},
      {SHUNT_MAP_ENDPOINT_META, "local pods: netns cookie -> namespace, name (for the CLI)"},
      {SHUNT_MAP_IPCACHE, "pod IP -> identity, node-local flag"},
      {SHUNT_MAP_IPCACHE6, "pod IPv6 address -> identity, node-local flag"},
      {SHUNT_MAP_POD_CIDRS,
       "the cluster's pod ranges (--pod-cidrs): unknown pods there get no grants"},
      {SHUNT_MAP_SOCKHASH, "short-circuited sockets by 4-tuple"},
      {SHUNT_MAP_COUNTERS, "data-path counters (per CPU)"},
      {SHUNT_MAP_SOCKREF,
       "short-circuited sockets: kernel address, how each reads, why its flow left for TCP"},
      {SHUNT_MAP_TCP_REASONS, "flows kept off or moved off the short-circuit, by reason (per CPU)"},
      {SHUNT_MAP_POLICY,
       "policy: src identity, dst identity, port, proto -> verdict, TrafficTarget"},
      {SHUNT_MAP_RULE_META, "TrafficTarget names by rule id (for the CLI)"},
      {SHUNT_MAP_IDENTITY_META, "namespace/serviceaccount by identity (for the CLI)"},
      {SHUNT_MAP_CONFIG, "mode: permissive or enforce; telemetry on or off"},
      {SHUNT_MAP_EVENTS, "ring buffer of denials, read by the agent"},
      {SHUNT_MAP_TC_ENDPOINTS, "node-side veth ifindex -> pod IPv4 and IPv6, identity (TC guards)"},
      {SHUNT_MAP_FLOWS, "live TCP flows of local pods (LRU): bytes, timing, verdict"},
      {SHUNT_MAP_FLOW_HISTS,
       "response-latency histograms of live flows that answered a request (LRU)"},
      {SHUNT_MAP_FLOW_EVENTS, "ring buffer of finished flow records, read by the agent"},
      {SHUNT_MAP_SERVICES,
       "services: ClusterIP, port, proto -> slot table (or up to 4 slots inline), balancer"},
      {SHUNT_MAP_SLOTS, "slot tables: table, index -> backend pod address and port"},
      {SHUNT_MAP_SVC_ORIGIN, "per socket: the service address it connected to (getpeername)"},
      {SHUNT_MAP_UDP_REVNAT, "UDP replies: socket, backend -> the service address (recvmsg)"},
      {SHUNT_MAP_UDP_REPLIES,
       "UDP exchanges policy allowed: client, server -> last datagram (replies pass, LRU)"},
      {SHUNT_MAP_UDP_REPLIES6, "the same between IPv6 addresses"},
      {SHUNT_MAP_UDP_BUDGET, "UDP exchanges each local pod opened in the current window"},
      {SHUNT_MAP_REVNAT_BUDGET,
       "UDP service reverse-NAT entries each local pod made in the current window"},
      {SHUNT_MAP_EVENT_BUDGET, "denial events each source identity sent in the current second"},
      {SHUNT_MAP_FRAGMENTS, "IPv4 datagrams whose first fragment passed: later ones may follow"},
      {SHUNT_MAP_FRAGMENTS6, "the same for IPv6 datagrams"},
      {SHUNT_MAP_LB_SCORES,
       "latency-aware balancing: backend -> score (peak EWMA x open connections)"},
      {SHUNT_MAP_LB_TRACE, "the last balancing choices per CPU (shuntctl lb explain)"},
      {SHUNT_MAP_MTLS_CONFIG, "mTLS hand-off: mode and the node proxy's outbound address"},
      {SHUNT_MAP_MTLS_SK, "per socket handed to the proxy: where it was going (connect4)"},
      {SHUNT_MAP_MTLS_ORIG,
       "connections handed to the proxy: pod address:port -> original destination (LRU)"},
      {SHUNT_MAP_MTLS_ORIG6, "the same for IPv6 connections"},
  };
  return kMaps;
}

const std::vector<std::string>& RetiredMapList() {
  // Layouts an earlier version pinned: an upgrade leaves them unused behind.
  static const std::vector<std::string> kRetired = {
      "shunt_services_v1",  "shunt_flows_v1",  "shunt_flow_events_v1",
      "shunt_counters_v1",  "shunt_flows_v2",  "shunt_flow_events_v2",
      "shunt_endpoints_v1", "shunt_tc_eps_v1", "shunt_sockref_v1"};
  return kRetired;
}

const std::vector<std::string>& PinnedLinkList() {
  static const std::vector<std::string> kLinks = {
      SHUNT_LINK_SOCKOPS,      SHUNT_LINK_SK_MSG,    SHUNT_LINK_CONNECT4,   SHUNT_LINK_SENDMSG4,
      SHUNT_LINK_GETPEERNAME4, SHUNT_LINK_RECVMSG4,  SHUNT_LINK_CONNECT6,   SHUNT_LINK_GETPEERNAME6,
      SHUNT_LINK_RECVMSG6,     SHUNT_LINK_SENDMSG6,  SHUNT_LINK_SETSOCKOPT, SHUNT_LINK_GETSOCKOPT,
      SHUNT_LINK_WATCH_RECV,   SHUNT_LINK_WATCH_SEND};
  return kLinks;
}

std::string PinLayout::Map(absl::string_view pin_name) const {
  return absl::StrCat(dir_, "/", pin_name);
}
std::string PinLayout::LinkDir() const { return absl::StrCat(dir_, "/", SHUNT_LINK_DIR); }
std::string PinLayout::Link(absl::string_view link_name) const {
  return absl::StrCat(LinkDir(), "/", link_name);
}

}  // namespace shunt::lib
