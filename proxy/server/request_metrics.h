// Request metrics of the L7 layer (docs/l7.md, issue 17 item 4): for each
// edge (source and destination identity, destination port) and route, the
// requests by status class and their latency, cumulative since the proxy
// started. Sent to the agent in the proxy's report each second; the agent
// shows them in /metrics (shunt_l7_requests_total,
// shunt_l7_request_duration_seconds). Shared by the worker threads, each
// of which counts into a shard of its own: no lock or cache line is shared
// between workers per request of a series they count (the report merges
// the shards each second); a thread's first request of a series asks the
// shared key set (the bounds).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "proxy/tunnel/connect_authority.h"
#include "shunt/abi/flow.h"

namespace shunt::proxy {

class RequestMetrics {
 public:
  // Upper bounds of the latency buckets, in seconds (then +Inf).
  static constexpr std::array<double, 12> kBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                     0.1,   0.25,   0.5,   1.0,  2.5,   5.0};
  // Beyond this many series, new ones are counted in `series_dropped`.
  static constexpr size_t kMaxSeries = 10000;

  // One finished request: `status` 0 when it got no response; `retries`
  // the attempts it took after the first.
  void Add(absl::string_view source, absl::string_view destination, uint16_t port,
           absl::string_view route, int status, int64_t micros, int retries = 0);
  // [{"src", "dst", "port", "route", "classes": {"2xx": N, ...}, "buckets":
  // [cumulative counts per bound, then +Inf], "sum_s", "count", "retries"},
  // ...] and the dropped count.
  nlohmann::json Report() const;

  // The same request by address, for the agent's recent windows per pod
  // edge and route (it knows which pod has an address; the proxy only
  // identities): `client` the client pod's address, `server` the pod it
  // went to (a service's endpoint), `denied` answered 403 by policy.
  // Latency in the kernel's histogram buckets (shunt/abi/flow.h), so the
  // agent adds it to flows' without re-binning.
  void AddRecent(const Destination& client, const Destination& server, absl::string_view route,
                 int status, int64_t micros, int retries, bool denied);
  // {"requests": [{"client", "server", "port", "route", "classes": [none,
  // 1xx .. 5xx], "denied", "retries", "hist": [[bucket, n], ...],
  // "sum_ns"}, ...], "dropped": N} since the last call, and forgets them.
  nlohmann::json TakeRecent();
  // Beyond this many address/route series in one report, requests are
  // only counted in `dropped`.
  static constexpr size_t kMaxRecent = 4096;

 private:
  struct Series {
    std::string source, destination, route;
    uint16_t port = 0;
    std::array<uint64_t, 6> by_class{};  // "no response", 1xx .. 5xx
    std::array<uint64_t, kBounds.size() + 1> buckets{};
    double sum_s = 0;
    uint64_t count = 0;
    uint64_t retries = 0;
  };
  struct Recent {
    Destination client, server;
    std::string route;
    std::array<uint64_t, 6> by_class{};
    uint64_t denied = 0, retries = 0, sum_ns = 0;
    std::array<uint32_t, SHUNT_HIST_BUCKETS> hist{};
  };
  // A thread's counts: its mutex is taken per request only by that
  // thread, and once a second by the reporter.
  struct alignas(64) Shard {
    mutable std::mutex mu;
    absl::flat_hash_map<std::string, Series> series;
    uint64_t series_dropped = 0;
    absl::flat_hash_map<std::string, Recent> recent;
    uint64_t recent_dropped = 0;
  };
  // Threads take shards in turn (more threads than shards share them).
  static constexpr size_t kShards = 64;
  Shard& ShardOfThisThread();

  std::array<Shard, kShards> shards_;
  // The distinct keys over all shards, for the bounds: asked only when a
  // thread counts a series for the first time, with its shard's lock held
  // (a shard's lock, then keys_mu_: never the other way round). Once a set
  // is full it does not change until TakeRecent empties it (the recent
  // keys, each window) while it holds every shard's lock: a thread holding
  // its own shard's lock then reads it without keys_mu_, so that requests
  // of refused series do not all meet on one lock.
  struct KeySet {
    absl::flat_hash_set<std::string> keys;
    std::atomic<bool> full{false};
  };
  std::mutex keys_mu_;
  KeySet series_keys_, recent_keys_;
  // Whether `key` may be counted as a series of its kind: already one (in
  // another thread's shard, or admitted this window), or a new one within
  // `limit`. Called with the calling thread's shard lock held.
  bool Admit(KeySet& set, const std::string& key, size_t limit);
};

}  // namespace shunt::proxy
