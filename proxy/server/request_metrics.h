// Request metrics of the L7 layer (docs/l7.md, issue 17 item 4): for each
// edge (source and destination identity, destination port) and route, the
// requests by status class and their latency, cumulative since the proxy
// started. Sent to the agent in the proxy's report each second; the agent
// shows them in /metrics (shunt_l7_requests_total,
// shunt_l7_request_duration_seconds). Shared by the worker threads.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

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
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Series> series_;
  uint64_t series_dropped_ = 0;
};

}  // namespace shunt::proxy
