// What each service address should balance to: from Services, their
// EndpointSlices and TrafficSplits, one entry per (ClusterIP, port) with
// the ready backends and the slot table that carries their weights. No
// kernel access: unit-tested directly; ServiceWriter applies it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/model/l7_settings.h"
#include "agent/model/object_ref.h"
#include "agent/model/objects.h"
#include "shunt/abi/service.h"

namespace shunt::services {

struct Backend {
  uint32_t ip_be = 0;
  uint16_t port = 0;  // host order
  std::string
      service;  // "ns/name" of the Service it came from (a split's backend, or the service itself)
  auto operator<=>(const Backend&) const = default;
};

// Service annotation choosing the balancer when no TrafficSplit applies:
// "p2c-ewma" (the default: two random backends, the one with the lower
// latency score) or "random". A TrafficSplit's weights always use random
// slots.
inline constexpr char kBalancerAnnotation[] = "balancer.shunt.dev/algorithm";

struct ServiceEntry {
  std::string service;  // "ns/name"
  std::string port_name;
  uint32_t vip_be = 0;
  uint16_t port = 0;  // host order
  uint8_t proto = 6;
  uint8_t lb = 0;                 // SHUNT_LB_*
  std::string split;              // "ns/name" of the TrafficSplit in force, if any
  std::vector<Backend> backends;  // ready, distinct, sorted
  // The slot table: indices into `backends`; a backend's share of slots is
  // its weight. Empty = no ready backend (connect() refused).
  std::vector<uint32_t> slots;
  // Each backend's weight (parallel to `backends`): a split backend's
  // weight shared by its ready endpoints, scaled; 1 without a split.
  std::vector<uint64_t> weights;
  // The node proxy's L7 layer balances this entry's requests (TCP only;
  // SHUNT_SVC_F_L7): its Service has shunt.dev/ annotations, or its
  // TrafficSplit has matches. Meshed clients' connections go to the proxy;
  // the slots serve everyone else.
  bool l7 = false;
  model::L7Settings l7_settings;
  // A TrafficSplit with matches: the requests that match one of its
  // HTTPRouteGroups (names, in the split's namespace) go to these backends
  // (with their weights); the others, and everyone the kernel balances, to
  // `backends`, the root's own endpoints (SMI: "requests that do not match
  // go to the Kubernetes Service named spec.service").
  std::vector<std::string> l7_split_groups;
  std::vector<Backend> l7_split_backends;
  std::vector<uint64_t> l7_split_weights;
};

struct Plan {
  std::vector<ServiceEntry> entries;  // sorted by (vip, port, proto)
  std::vector<model::Problem> problems;
};

// What the Services of one namespace may take of the shared maps together:
// service entries (one per clusterIP, port and protocol) and slot-map
// entries (tables of more than SHUNT_SVC_INLINE slots). A Service that
// would take its namespace over either is refused whole, with a reason;
// Services are counted oldest first (creationTimestamp, then name), so a
// new one cannot push out those already in force.
struct NamespaceBudget {
  uint32_t entries = SHUNT_MAX_SERVICES / 4;
  uint32_t slots = SHUNT_MAX_SLOTS / 4;
};

Plan MakePlan(const model::Objects& objects, const NamespaceBudget& budget = {});

// `n` slots shared out by `weights` (largest remainder, ties to the lower
// index), interleaved so that consecutive slots spread over backends.
// Backends of weight 0 get none. All weights 0: no slots.
std::vector<uint32_t> WeightedSlots(const std::vector<uint64_t>& weights, uint32_t n);

}  // namespace shunt::services
