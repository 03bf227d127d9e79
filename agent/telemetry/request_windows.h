// Recent HTTP requests through the node proxy's L7 layer, per pod edge and
// route, for the windows of `shuntctl stat`/`top` and the TrafficMetrics
// API (docs/l7.md, issue 17 item 4). The proxy reports each second what
// finished since its last report (RequestMetrics::TakeRecent: client and
// server addresses, route, counts by status class, a latency histogram in
// the kernel's bucket layout); this folds those into 10 s slices, the last
// 60 s kept, as FlowAggregator does for flows.
//
// A request is the unit where the L7 layer saw one: it succeeds when the
// server answered with anything but a 5xx; it fails on a 5xx (the proxy's
// 502/503/504 included), no response at all, or a policy denial.
// Thread-safe: the main loop ingests while the API thread reads.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/histogram.h"
#include "agent/telemetry/peer_directory.h"
#include "nlohmann/json.hpp"

namespace shunt::telemetry {

struct RouteEdgeKey {
  PodEdgeKey edge;
  uint16_t port = 0;
  std::string route;  // "ns/group#match"; empty: the service's L7 without routes
  bool operator==(const RouteEdgeKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const RouteEdgeKey& k) {
    return H::combine(std::move(h), k.edge, k.port, k.route);
  }
};

struct RequestTotals {
  // By status class: none (no response), 1xx .. 5xx.
  std::array<uint64_t, 6> by_class{};
  uint64_t denied = 0;       // answered 403 by the proxy's policy (counted in 4xx too)
  uint64_t retries = 0;      // attempts after the first
  LatencyHistogram latency;  // request head to response end
  uint64_t requests() const;
  uint64_t failures() const { return by_class[0] + by_class[5] + denied; }
  uint64_t successes() const { return requests() - failures(); }
  void Merge(const RequestTotals& o);
};

class RequestWindows {
 public:
  // Beyond this many route edges, the least recently active one goes.
  static constexpr size_t kMaxKeys = 2048;

  void SetDirectory(std::shared_ptr<const PeerDirectory> d);
  // One report's "recent" array, as the proxy sent it, counted at
  // now_wall_ns. Malformed entries are skipped and counted (malformed()).
  void Ingest(const nlohmann::json& recent, int64_t now_wall_ns);

  // Route edges with requests in the last window_s seconds (1..60, whole
  // slices as FlowAggregator::Window), with their totals.
  std::vector<std::pair<RouteEdgeKey, RequestTotals>> Window(int64_t now_wall_ns,
                                                             int window_s) const;
  uint64_t malformed() const;
  uint64_t evicted() const;

 private:
  struct Slice {
    int64_t index = 0;
    std::array<uint64_t, 6> by_class{};
    uint64_t denied = 0, retries = 0, sum_ns = 0;
    uint32_t hist[SHUNT_HIST_BUCKETS] = {};
  };
  struct Series {
    std::deque<Slice> slices;  // oldest first
    int64_t last_index = 0;
  };
  void Prune(int64_t index);  // with mu_ held

  mutable std::mutex mu_;
  std::shared_ptr<const PeerDirectory> directory_ = PeerDirectory::Build({});
  absl::flat_hash_map<RouteEdgeKey, Series> series_;
  int64_t last_prune_index_ = 0;
  uint64_t malformed_ = 0, evicted_ = 0;
};

// The pod edges' window with the unit made the request where the L7 layer
// saw requests: such an edge's successes, failures and response latency
// are its requests' (its flows and mTLS share stay the kernel's), and an
// edge only the proxy saw is added.
std::vector<std::pair<PodEdgeKey, WindowTotals>> MergeRequests(
    std::vector<std::pair<PodEdgeKey, WindowTotals>> flows,
    const std::vector<std::pair<RouteEdgeKey, RequestTotals>>& requests);

}  // namespace shunt::telemetry
