// Folds finished flow records (and policy denials) into per-edge golden
// metrics — source workload -> destination workload and port: flows,
// successes, failures by kind, bytes, connect and response latency
// histograms — and keeps the most recent flows for `shuntctl flows`.
// Memory is bounded whatever the churn: a fixed number of recent flows and
// at most max_edges edges, the least recently active evicted first.
// Thread-safe: the collector thread ingests while the API thread reads.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/lib/clock.h"
#include "agent/telemetry/flow_view.h"
#include "agent/telemetry/histogram.h"
#include "agent/telemetry/peer_directory.h"
#include "shunt/abi/flow.h"
#include "shunt/abi/policy.h"

namespace shunt::telemetry {

struct EdgeKey {
  std::string src_namespace, src_workload, src_service_account;
  std::string dst_namespace, dst_workload, dst_service_account;
  uint16_t port = 0;
  bool operator==(const EdgeKey&) const = default;
  auto operator<=>(const EdgeKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const EdgeKey& k) {
    return H::combine(std::move(h), k.src_namespace, k.src_workload, k.src_service_account,
                      k.dst_namespace, k.dst_workload, k.dst_service_account, k.port);
  }
};

// Recent traffic between two pods (or a pod and an unmeshed address), for
// the TrafficMetrics API's windows: counts and response latency per 10 s
// slice, the last 60 s kept.
struct PodEdgeKey {
  std::string src_namespace, src_pod, src_workload;
  std::string dst_namespace, dst_pod, dst_workload;
  bool operator==(const PodEdgeKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const PodEdgeKey& k) {
    return H::combine(std::move(h), k.src_namespace, k.src_pod, k.src_workload, k.dst_namespace,
                      k.dst_pod, k.dst_workload);
  }
};
struct WindowTotals {
  // Flows, or requests where per_request (request_windows.h MergeRequests).
  uint64_t successes = 0, failures = 0;
  uint64_t flows = 0;  // finished flows (successes + failures at L4)
  uint64_t mtls = 0;   // finished flows carried in the mTLS tunnel between nodes
  LatencyHistogram response;
  bool per_request = false;
};

struct EdgeStats {
  uint64_t flows = 0;      // finished or denied
  uint64_t successes = 0;  // established and closed in order
  uint64_t refused = 0, reset = 0, denied = 0;
  uint64_t audit = 0;  // flows permissive mode let through without a grant
  uint64_t short_circuited = 0;
  uint64_t mtls = 0;  // carried between nodes in the mTLS tunnel (docs/mtls.md)
  uint64_t bytes_to_server = 0, bytes_to_client = 0;
  LatencyHistogram connect;   // connect() -> established, local clients
  LatencyHistogram response;  // request start -> response start
  int64_t last_wall_ns = 0;
  uint64_t failures() const { return refused + reset + denied; }
};

class FlowAggregator {
 public:
  struct Options {
    size_t recent_flows = 2048;
    size_t max_edges = 4096;
    size_t max_pod_edges = 2048;  // with windows: up to 6 x 800 B each
    // Dates the kernel's records (CLOCK_MONOTONIC stamps -> wall time).
    // Not owned; it outlives the aggregator. Tests pass a lib::FakeClock.
    const lib::Clock* clock = &lib::RealClock::Get();
  };
  explicit FlowAggregator(Options o) : opts_(o), directory_(PeerDirectory::Build({})) {}

  void SetDirectory(std::shared_ptr<const PeerDirectory> d);
  void SetRuleNames(std::shared_ptr<const std::map<uint32_t, std::string>> names);

  // A finished flow from the kernel.
  void Ingest(const FlowRecord& f);
  // A live record as the kernel's map holds it now (FlowCollector looks once
  // a second): its bytes and request/response samples since the last look
  // count at once, so a long-lived connection shows in metrics while it
  // lives; the flow itself (success or failure) counts when it finishes.
  // `scan` numbers the look; EndScan(scan) forgets records not seen for
  // three looks (evicted from the LRU map: they never finish).
  void IngestLive(const FlowRecord& f, int64_t now_wall_ns, uint64_t scan);
  void EndScan(uint64_t scan);
  // A policy denial (connect() or TC). Only enforced denials of new
  // connections are flows that failed; a TC denial's retransmitted SYNs
  // count once.
  void IngestDenial(const shunt_deny_event& e, int64_t wall_ns);

  // Finished flows with seq > after, oldest first, at most `limit`.
  std::vector<FlowView> Since(uint64_t after, size_t limit) const;
  uint64_t last_seq() const;
  // Names a live record from the flows map.
  FlowView Describe(const FlowRecord& f) const;

  std::vector<std::pair<EdgeKey, EdgeStats>> Edges() const;

  // The key of a server address in the per-server maps below: ip_be << 16
  // | port (host order).
  static uint64_t ServerKey(uint32_t ip_be, uint16_t port) {
    return (static_cast<uint64_t>(ip_be) << 16) | port;
  }

  // Finished flows by server address (ip_be, port in host order), for the
  // live share of a service's backends. At most kMaxServers addresses are
  // tracked; later ones are not counted.
  static constexpr size_t kMaxServers = 16384;
  uint64_t FlowsTo(uint32_t ip_be, uint16_t port) const;

  // What was measured of each server address (by ServerKey) since the last
  // TakeServerSamples: the latency-aware balancer's
  // input (services::LatencyScorer). Response samples count from live looks
  // too, so busy long-lived connections keep a backend's latency current.
  struct ServerSamples {
    uint64_t rr_sum_ns = 0, rr_count = 0;            // request start -> response start
    uint64_t connect_sum_ns = 0, connect_count = 0;  // connect() -> established, local clients
    uint32_t failures = 0;                           // refused, or reset with a request unanswered
  };
  absl::flat_hash_map<uint64_t, ServerSamples> TakeServerSamples();
  // Connections open to each server address at the last live look.
  absl::flat_hash_map<uint64_t, uint32_t> OpenByServer() const;

  static constexpr int kSliceSeconds = 10;
  static constexpr int kMaxWindowSeconds = 60;
  // Pod edges with traffic in the last `window_s` seconds (1..60, rounded up
  // to whole 10 s slices) before `now_wall_ns`, with their totals.
  std::vector<std::pair<PodEdgeKey, WindowTotals>> Window(int64_t now_wall_ns, int window_s) const;

  struct Totals {
    uint64_t flows = 0, denials = 0, edges_evicted = 0, pod_edges_evicted = 0;
    size_t edges = 0, recent = 0, pod_edges = 0;
  };
  Totals totals() const;

 private:
  FlowView Name(const FlowRecord& f) const;  // with mu_ held
  EdgeStats& EdgeFor(const FlowView& v, int64_t now_wall);
  void Remember(FlowView v);
  void AddToWindow(const FlowView& v, bool success, bool failure, int64_t now_wall);

  struct Slice {
    int64_t index = 0;  // wall seconds / kSliceSeconds
    uint64_t successes = 0, failures = 0, response_sum_ns = 0;
    uint64_t mtls = 0;  // of those flows, carried between nodes by the mTLS proxies
    uint32_t response[SHUNT_HIST_BUCKETS] = {};
  };
  struct PodEdge {
    std::deque<Slice> slices;  // by index, oldest first, within the last kMaxWindowSeconds
    std::list<PodEdgeKey>::iterator lru;  // its place in pod_lru_
  };

  const Options opts_;
  mutable std::mutex mu_;
  std::shared_ptr<const PeerDirectory> directory_;
  std::shared_ptr<const std::map<uint32_t, std::string>> rule_names_;
  std::deque<FlowView> recent_;
  uint64_t next_seq_ = 1;
  // Edges with their place in the recency list (front = most recent).
  std::list<EdgeKey> lru_;
  absl::flat_hash_map<EdgeKey, std::pair<EdgeStats, std::list<EdgeKey>::iterator>> edges_;
  absl::flat_hash_map<PodEdgeKey, PodEdge> pod_edges_;
  absl::flat_hash_map<uint64_t, uint64_t> flows_to_;  // ServerKey -> finished flows
  absl::flat_hash_map<uint64_t, ServerSamples>
      server_samples_;  // since the last take (<= kMaxServers)
  absl::flat_hash_map<uint64_t, uint32_t> open_scanning_,
      open_by_server_;  // live look in progress, last one
  ServerSamples* SamplesFor(const shunt_flow_key& k);
  std::list<PodEdgeKey> pod_lru_;  // front = most recently touched
  int64_t last_prune_index_ = 0;
  // Recent TC denials by (saddr, sport, daddr, dport): SYN retransmissions.
  absl::flat_hash_map<std::tuple<uint32_t, uint16_t, uint32_t, uint16_t>, int64_t> recent_denials_;
  Totals totals_;

  // What live looks already counted of each open flow.
  struct Folded {
    uint64_t bytes[2] = {0, 0};
    uint64_t rr_sum_ns = 0, rr_count = 0;
    uint32_t rr_hist[SHUNT_HIST_BUCKETS] = {};
    uint64_t last_scan = 0;
  };
  absl::flat_hash_map<FlowInstance, Folded> live_;
  // Adds a record's bytes and response samples (all of them, or a delta).
  void AddTraffic(const FlowView& amounts, EdgeStats& s, int64_t now_wall);
};

}  // namespace shunt::telemetry
