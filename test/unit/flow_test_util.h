// Test helpers shared by the flow aggregator's test files: addresses, a
// clock at the middle of a slice, flow records, the demo pods.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/lib/clock.h"
#include "agent/model/pod.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_view.h"
#include "agent/telemetry/histogram.h"
#include "agent/telemetry/peer_directory.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/flow.h"
#include "shunt/abi/policy.h"

namespace shunt::telemetry::flow_test {

constexpr int64_t kSec = 1000000000;
constexpr int64_t kSlice = int64_t{FlowAggregator::kSliceSeconds} * kSec;

inline uint32_t Be(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return a.s_addr;
}

// A pod as the config loader would have parsed it. kind/workload empty: no owner.
inline model::Pod MakePod(const std::string& ns, const std::string& name, const std::string& sa,
                          const std::string& ip, const std::string& kind = "",
                          const std::string& workload = "") {
  model::Pod p;
  p.namespace_ = ns;
  p.name = name;
  p.service_account = sa;
  p.ip = ip;
  p.ip_be = Be(ip.c_str());
  p.node_name = "node-a";
  p.workload_kind = kind;
  p.workload = workload;
  return p;
}

// The aggregator's clock in these tests, for those that care which 10 s
// slice a flow lands in: the wall clock reads the middle of a slice, the
// monotonic clock 1,000 s (a machine up for a while, so flows from minutes
// before have stamps). Flows ending at mono(offset) land `offset` ns after
// mid-slice. It never moves unless a test moves it.
struct Clock {
  static constexpr int64_t kStartMono = 1000 * kSec;
  static constexpr int64_t kStartWall = int64_t{1'765'000'000} * kSec + kSlice / 2;
  lib::FakeClock fake{kStartMono, kStartWall};
  int64_t mid_wall = kStartWall;  // wall ns, mid-slice
  int64_t mid_mono = kStartMono;  // the monotonic ns for mid_wall
  uint64_t mono(int64_t offset_ns = 0) const { return static_cast<uint64_t>(mid_mono + offset_ns); }
  int64_t slice() const { return mid_wall / kSlice; }
};

// Response latency samples into the flow's kernel histogram.
inline void AddResponses(FlowRecord& f, const std::vector<uint64_t>& samples_ns) {
  for (uint64_t ns : samples_ns) {
    ++f.rr_hist[shunt_hist_bucket(ns)];
    f.rr_sum_ns += ns;
    ++f.rr_count;
  }
}

inline FlowRecord MakeFlow(const char* client, uint16_t cport, const char* server, uint16_t sport,
                           uint8_t end, uint64_t end_ns) {
  FlowRecord f{};
  f.key.client_ip4 = Be(client);
  f.key.server_ip4 = Be(server);
  f.key.client_port = htons(cport);
  f.key.server_port = htons(sport);
  f.end_ns = end_ns;
  f.start_ns = end_ns - 2 * 1000000;  // 2 ms long
  f.end = end;
  f.verdict = SHUNT_FLOW_ALLOWED;
  f.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_ESTABLISHED;
  return f;
}

inline shunt_deny_event MakeDenial(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                                   uint8_t hook, uint64_t ts_ns) {
  shunt_deny_event e{};
  e.ts_ns = ts_ns;
  e.saddr = Be(src);
  e.daddr = Be(dst);
  e.sport = htons(sport);
  e.dport = htons(dport);
  e.proto = 6;
  e.type = SHUNT_EVENT_POLICY_DENY;
  e.hook = hook;
  e.enforced = 1;
  return e;
}

inline std::optional<EdgeStats> FindEdge(const FlowAggregator& a, const EdgeKey& k) {
  for (const auto& [key, stats] : a.Edges())
    if (key == k) return stats;
  return std::nullopt;
}

inline std::optional<WindowTotals> FindPodEdge(
    const std::vector<std::pair<PodEdgeKey, WindowTotals>>& w, const PodEdgeKey& k) {
  for (const auto& [key, totals] : w)
    if (key == k) return totals;
  return std::nullopt;
}

// demo/web-1 and demo/web-2: deployment/web, sa web; web-3: deployment/web
// but sa web-canary; demo/api-1: statefulset/api, sa api; demo/lonely: no
// owner, sa lonely.
inline std::vector<model::Pod> DemoPods() {
  return {
      MakePod("demo", "web-1", "web", "10.0.0.1", "deployment", "web"),
      MakePod("demo", "web-2", "web", "10.0.0.2", "deployment", "web"),
      MakePod("demo", "web-3", "web-canary", "10.0.0.3", "deployment", "web"),
      MakePod("demo", "api-1", "api", "10.0.1.1", "statefulset", "api"),
      MakePod("demo", "lonely", "lonely", "10.0.2.1"),
  };
}

const EdgeKey kWebToApi{"demo", "deployment/web", "web", "demo", "statefulset/api", "api", 8080};

// The kernel's monotonic stamps become wall time through the aggregator's
// clock (the offset between its two readings), never the machine's.

}  // namespace shunt::telemetry::flow_test
