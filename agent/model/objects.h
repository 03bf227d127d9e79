// The typed objects the controllers read, and the snapshot the object store
// publishes. Nothing here knows which source the objects came from.
#pragma once

#include <cstdint>
#include <vector>

#include "agent/model/namespace.h"
#include "agent/model/object_ref.h"
#include "agent/model/pod.h"
#include "agent/model/service.h"
#include "agent/model/smi.h"

namespace shunt::model {

struct Objects {
  std::vector<Pod> pods;
  std::vector<TrafficTarget> traffic_targets;
  std::vector<PortRoute> tcp_routes;
  std::vector<PortRoute> udp_routes;
  std::vector<HttpRouteGroup> http_route_groups;
  std::vector<Service> services;
  std::vector<EndpointSlice> endpoint_slices;
  // In a Snapshot, one split per root service: of several, the oldest
  // (creationTimestamp, then name) wins and the others are reported as
  // problems (SMI.md 7.10).
  std::vector<TrafficSplit> traffic_splits;
  std::vector<Namespace> namespaces;  // for their shunt.dev annotations
};

struct Snapshot : Objects {
  // Counts up by one with every published change; 0 before the first.
  uint64_t generation = 0;
  std::vector<Problem> problems;  // rejected: where, object, reason
  // Skipped kinds and objects this version does not load-balance.
  std::vector<Problem> notices;
  int origins = 0;    // files (file source) or resource lists the objects came from
  int documents = 0;  // documents seen, valid or not
};

}  // namespace shunt::model
