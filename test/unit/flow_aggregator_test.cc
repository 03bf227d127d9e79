// FlowAggregator: per-edge golden metrics from finished flows and policy
// denials, the recent-flows ring, per-pod-edge windows, memory bounds under
// churn; and FlowJson, the rendering of one flow.
#include "agent/telemetry/flow_aggregator.h"

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
#include "agent/telemetry/flow_view.h"
#include "agent/telemetry/histogram.h"
#include "agent/telemetry/peer_directory.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/flow.h"
#include "shunt/abi/policy.h"

namespace shunt::telemetry {
namespace {

constexpr int64_t kSec = 1000000000;
constexpr int64_t kSlice = int64_t{FlowAggregator::kSliceSeconds} * kSec;

uint32_t Be(const char* dotted) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, dotted, &a), 1) << dotted;
  return a.s_addr;
}

// A pod as the config loader would have parsed it. kind/workload empty: no owner.
model::Pod MakePod(const std::string& ns, const std::string& name, const std::string& sa,
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
void AddResponses(FlowRecord& f, const std::vector<uint64_t>& samples_ns) {
  for (uint64_t ns : samples_ns) {
    ++f.rr_hist[shunt_hist_bucket(ns)];
    f.rr_sum_ns += ns;
    ++f.rr_count;
  }
}

FlowRecord MakeFlow(const char* client, uint16_t cport, const char* server, uint16_t sport,
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

shunt_deny_event MakeDenial(const char* src, uint16_t sport, const char* dst, uint16_t dport,
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

std::optional<EdgeStats> FindEdge(const FlowAggregator& a, const EdgeKey& k) {
  for (const auto& [key, stats] : a.Edges())
    if (key == k) return stats;
  return std::nullopt;
}

std::optional<WindowTotals> FindPodEdge(const std::vector<std::pair<PodEdgeKey, WindowTotals>>& w,
                                        const PodEdgeKey& k) {
  for (const auto& [key, totals] : w)
    if (key == k) return totals;
  return std::nullopt;
}

// demo/web-1 and demo/web-2: deployment/web, sa web; web-3: deployment/web
// but sa web-canary; demo/api-1: statefulset/api, sa api; demo/lonely: no
// owner, sa lonely.
std::vector<model::Pod> DemoPods() {
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
TEST(FlowAggregatorTest, RecordsAreDatedByTheGivenClock) {
  Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.Ingest(
      MakeFlow("10.0.0.1", 40001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono(-5 * kSec)));
  const std::vector<FlowView> done = agg.Since(0, 10);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].end_wall_ns, clock.mid_wall - 5 * kSec);
  EXPECT_EQ(done[0].start_wall_ns, clock.mid_wall - 5 * kSec - 2000000);  // MakeFlow: 2 ms long
  // Both clocks move on together: a stamp keeps its wall time. An open
  // record has no end stamp and gets no end time.
  clock.fake.Advance(90 * kSec);
  FlowRecord live = MakeFlow("10.0.0.1", 40002, "10.0.1.1", 8080, SHUNT_FLOW_OPEN, 0);
  live.start_ns = clock.mono();
  const FlowView v = agg.Describe(live);
  EXPECT_EQ(v.start_wall_ns, clock.mid_wall);
  EXPECT_EQ(v.end_wall_ns, 0);
}

TEST(FlowAggregatorTest, IngestCountsEveryKindOfEndPerEdge) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));

  // web-1 -> api-1:8080, closed, short-circuited, two responses.
  FlowRecord f1 = MakeFlow("10.0.0.1", 40001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  f1.flags |= SHUNT_FLOW_F_SHORT_CIRCUIT;
  f1.bytes[0] = 100;
  f1.bytes[1] = 2000;
  f1.connect_ns = 50000;
  AddResponses(f1, {1000000, 3000000});
  // web-2 -> api-1:8080, closed, let through by permissive mode, one response.
  FlowRecord f2 = MakeFlow("10.0.0.2", 40002, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  f2.verdict = SHUNT_FLOW_AUDIT;
  f2.bytes[0] = 10;
  f2.bytes[1] = 20;
  AddResponses(f2, {5000000});
  // web-1 -> api-1:8080, reset after it was established.
  FlowRecord f3 = MakeFlow("10.0.0.1", 40003, "10.0.1.1", 8080, SHUNT_FLOW_RESET, clock.mono());
  f3.bytes[0] = 1;
  f3.bytes[1] = 2;
  f3.connect_ns = 70000;
  // web-1 -> api-1:8080, refused. Only the SC_CLIENT half of short-circuit.
  FlowRecord f4 = MakeFlow("10.0.0.1", 40004, "10.0.1.1", 8080, SHUNT_FLOW_REFUSED, clock.mono());
  f4.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_SC_CLIENT;
  // The same workload on another port, from a pod with another service account,
  // from a pod without an owner to an unknown address, and from an unknown one.
  FlowRecord f5 = MakeFlow("10.0.0.1", 40005, "10.0.1.1", 9090, SHUNT_FLOW_CLOSED, clock.mono());
  FlowRecord f6 = MakeFlow("10.0.0.3", 40006, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  FlowRecord f7 = MakeFlow("10.0.2.1", 40007, "192.168.9.9", 443, SHUNT_FLOW_CLOSED, clock.mono());
  f7.verdict = SHUNT_FLOW_UNMESHED;
  FlowRecord f8 = MakeFlow("172.16.0.5", 40008, "10.0.1.1", 8080, SHUNT_FLOW_RESET, clock.mono());
  for (const FlowRecord* f : {&f1, &f2, &f3, &f4, &f5, &f6, &f7, &f8}) agg.Ingest(*f);
  // web-2 -> api-1:8080 denied at connect().
  agg.IngestDenial(MakeDenial("10.0.0.2", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                   clock.mid_wall);

  auto web_api = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(web_api.has_value());
  EXPECT_EQ(web_api->flows, 5u);
  EXPECT_EQ(web_api->successes, 2u);
  EXPECT_EQ(web_api->reset, 1u);
  EXPECT_EQ(web_api->refused, 1u);
  EXPECT_EQ(web_api->denied, 1u);
  EXPECT_EQ(web_api->failures(), 3u);
  EXPECT_EQ(web_api->audit, 1u);
  EXPECT_EQ(web_api->short_circuited, 1u);  // f4 had only one of the two flags
  EXPECT_EQ(web_api->bytes_to_server, 111u);
  EXPECT_EQ(web_api->bytes_to_client, 2022u);
  EXPECT_EQ(web_api->connect.count(), 2u);  // f2, f4 and the denial measured none
  EXPECT_EQ(web_api->connect.sum_ns(), 120000u);
  EXPECT_EQ(web_api->response.count(), 3u);
  EXPECT_EQ(web_api->response.sum_ns(), 9000000u);
  EXPECT_EQ(web_api->response.buckets()[shunt_hist_bucket(1000000)], 1u);
  EXPECT_EQ(web_api->response.buckets()[shunt_hist_bucket(3000000)], 1u);
  EXPECT_EQ(web_api->response.buckets()[shunt_hist_bucket(5000000)], 1u);
  EXPECT_EQ(web_api->last_wall_ns, clock.mid_wall);  // the denial's, the latest

  EdgeKey other_port = kWebToApi;
  other_port.port = 9090;
  auto e5 = FindEdge(agg, other_port);
  ASSERT_TRUE(e5.has_value());
  EXPECT_EQ(e5->flows, 1u);
  EXPECT_EQ(e5->successes, 1u);

  EdgeKey canary = kWebToApi;
  canary.src_service_account = "web-canary";
  auto e6 = FindEdge(agg, canary);
  ASSERT_TRUE(e6.has_value());
  EXPECT_EQ(e6->flows, 1u);
  EXPECT_EQ(e6->successes, 1u);

  auto e7 = FindEdge(agg, EdgeKey{"demo", "sa/lonely", "lonely", "", "unmeshed", "", 443});
  ASSERT_TRUE(e7.has_value());
  EXPECT_EQ(e7->flows, 1u);
  EXPECT_EQ(e7->successes, 1u);

  auto e8 = FindEdge(agg, EdgeKey{"", "unmeshed", "", "demo", "statefulset/api", "api", 8080});
  ASSERT_TRUE(e8.has_value());
  EXPECT_EQ(e8->flows, 1u);
  EXPECT_EQ(e8->reset, 1u);
  EXPECT_EQ(e8->successes, 0u);

  EXPECT_EQ(agg.Edges().size(), 5u);
  const FlowAggregator::Totals t = agg.totals();
  EXPECT_EQ(t.flows, 8u);
  EXPECT_EQ(t.denials, 1u);
  EXPECT_EQ(t.edges, 5u);
  EXPECT_EQ(t.recent, 9u);
  EXPECT_EQ(t.edges_evicted, 0u);
  EXPECT_EQ(agg.last_seq(), 9u);

  // The recent flows, named, oldest first.
  std::vector<FlowView> all = agg.Since(0, 100);
  ASSERT_EQ(all.size(), 9u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, i + 1);
  EXPECT_EQ(all[0].client.pod, "web-1");
  EXPECT_EQ(all[0].client.workload, "deployment/web");
  EXPECT_EQ(all[0].server.pod, "api-1");
  EXPECT_EQ(all[0].raw.bytes[1], 2000u);
  EXPECT_EQ(all[6].server.workload, "unmeshed");
  EXPECT_FALSE(all[6].server.known());
  EXPECT_EQ(all[8].client.pod, "web-2");
  EXPECT_EQ(all[8].raw.verdict, SHUNT_FLOW_DENIED);
  EXPECT_EQ(all[8].raw.end, SHUNT_FLOW_DENIED_END);
  EXPECT_EQ(all[8].end_wall_ns, clock.mid_wall);
  EXPECT_EQ(all[8].start_wall_ns, clock.mid_wall);
  // Wall times come from the monotonic ones: mid-slice, give or take the
  // microseconds between clock reads.
  EXPECT_NEAR(static_cast<double>(all[0].end_wall_ns), static_cast<double>(clock.mid_wall), 1e8);
  EXPECT_NEAR(static_cast<double>(all[0].end_wall_ns - all[0].start_wall_ns), 2e6, 1e5);
}

TEST(FlowAggregatorTest, SinceIsDenseOldestFirstAndLimited) {
  const Clock clock;
  FlowAggregator agg(FlowAggregator::Options{.recent_flows = 5, .clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  EXPECT_TRUE(agg.Since(0, 10).empty());
  EXPECT_EQ(agg.last_seq(), 0u);
  for (uint16_t i = 0; i < 8; ++i)
    agg.Ingest(MakeFlow("10.0.0.1", 41000 + i, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono()));
  EXPECT_EQ(agg.last_seq(), 8u);
  EXPECT_EQ(agg.totals().recent, 5u);

  // Only 4..8 are kept; asking from before them starts at the oldest.
  std::vector<FlowView> v = agg.Since(0, 100);
  ASSERT_EQ(v.size(), 5u);
  for (size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v[i].seq, 4 + i);
    EXPECT_EQ(ntohs(v[i].raw.key.client_port), 41003 + i);  // the flow that got that seq
  }
  v = agg.Since(4, 2);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].seq, 5u);
  EXPECT_EQ(v[1].seq, 6u);
  v = agg.Since(6, 100);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].seq, 7u);
  EXPECT_EQ(v[1].seq, 8u);
  EXPECT_TRUE(agg.Since(8, 100).empty());
  EXPECT_TRUE(agg.Since(1000, 100).empty());
  EXPECT_TRUE(agg.Since(0, 0).empty());
}

TEST(FlowAggregatorTest, DescribeNamesALiveRecord) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  FlowRecord live = MakeFlow("10.0.2.1", 42000, "10.0.1.1", 8080, SHUNT_FLOW_OPEN, 0);
  live.start_ns = clock.mono(-3 * kSec);
  live.end_ns = 0;
  const FlowView v = agg.Describe(live);
  EXPECT_EQ(v.seq, 0u);
  EXPECT_EQ(v.client.namespace_, "demo");
  EXPECT_EQ(v.client.pod, "lonely");
  EXPECT_EQ(v.client.workload, "sa/lonely");
  EXPECT_EQ(v.client.service_account, "lonely");
  EXPECT_EQ(v.server.pod, "api-1");
  EXPECT_EQ(v.server.workload, "statefulset/api");
  EXPECT_EQ(v.end_wall_ns, 0);
  EXPECT_NEAR(static_cast<double>(v.start_wall_ns), static_cast<double>(clock.mid_wall - 3 * kSec),
              1e8);
  // Describing is not ingesting.
  EXPECT_EQ(agg.totals().flows, 0u);
  EXPECT_EQ(agg.totals().recent, 0u);
  EXPECT_TRUE(agg.Edges().empty());
}

TEST(FlowAggregatorTest, DirectoryChangesRenameLaterFlows) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  // No directory yet: both ends unmeshed.
  agg.Ingest(MakeFlow("10.0.0.1", 43000, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono()));
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  agg.Ingest(MakeFlow("10.0.0.1", 43001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono()));
  auto unknown = FindEdge(agg, EdgeKey{"", "unmeshed", "", "", "unmeshed", "", 8080});
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(unknown->flows, 1u);
  auto known = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(known.has_value());
  EXPECT_EQ(known->flows, 1u);
}

TEST(FlowAggregatorTest, HostNetworkPodsAreNotInTheDirectory) {
  std::vector<model::Pod> pods = DemoPods();
  model::Pod host = MakePod("kube-system", "proxy", "proxy", "10.9.9.9", "daemonset", "proxy");
  host.host_network = true;
  pods.push_back(host);
  auto dir = PeerDirectory::Build(pods);
  EXPECT_FALSE(dir->Find(Be("10.9.9.9")).known());
  EXPECT_EQ(dir->Find(Be("10.9.9.9")).workload, "unmeshed");
  EXPECT_EQ(dir->Find(Be("10.0.0.3")).service_account, "web-canary");
  EXPECT_EQ(dir->Find(Be("10.0.0.3")).workload, "deployment/web");
}

TEST(FlowAggregatorTest, TcDenialRetransmissionsCountOnce) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  const int64_t t0 = clock.mid_wall;
  // The SYN and its retransmissions, 1, 3 and 7 s later: one flow.
  for (int64_t dt : {0, 1, 3, 7})
    agg.IngestDenial(
        MakeDenial("10.0.0.1", 45000, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono(dt * kSec)),
        t0 + dt * kSec);
  auto e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->flows, 1u);
  EXPECT_EQ(e->denied, 1u);
  EXPECT_EQ(agg.totals().denials, 1u);
  EXPECT_EQ(agg.totals().recent, 1u);

  // Another connection (another source port) is another flow, once too.
  for (int64_t dt : {8, 9})
    agg.IngestDenial(
        MakeDenial("10.0.0.1", 45001, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono(dt * kSec)),
        t0 + dt * kSec);
  e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->flows, 2u);
  EXPECT_EQ(e->denied, 2u);

  // Ignored: permissive-mode (not enforced) denials, UDP, spoofing drops.
  shunt_deny_event permissive =
      MakeDenial("10.0.0.1", 45002, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono());
  permissive.enforced = 0;
  agg.IngestDenial(permissive, t0);
  shunt_deny_event permissive_connect =
      MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono());
  permissive_connect.enforced = 0;
  agg.IngestDenial(permissive_connect, t0);
  shunt_deny_event udp =
      MakeDenial("10.0.0.1", 45003, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono());
  udp.proto = 17;
  agg.IngestDenial(udp, t0);
  shunt_deny_event udp_sendmsg =
      MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_SENDMSG4, clock.mono());
  udp_sendmsg.proto = 17;
  agg.IngestDenial(udp_sendmsg, t0);
  shunt_deny_event spoof =
      MakeDenial("10.0.0.1", 45004, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono());
  spoof.type = SHUNT_EVENT_SPOOF_DROP;
  agg.IngestDenial(spoof, t0);
  e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->flows, 2u);
  EXPECT_EQ(e->denied, 2u);
  EXPECT_EQ(agg.totals().denials, 2u);
  EXPECT_EQ(agg.totals().recent, 2u);
  EXPECT_EQ(agg.totals().edges, 1u);

  // connect() denials have no source port yet: each is a flow of its own.
  for (int i = 0; i < 3; ++i)
    agg.IngestDenial(MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                     t0 + 9 * kSec);
  e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->flows, 5u);
  EXPECT_EQ(e->denied, 5u);
  EXPECT_EQ(e->successes, 0u);
  EXPECT_EQ(agg.totals().denials, 5u);
  EXPECT_EQ(agg.last_seq(), 5u);

  // Long after the retransmissions gave up (> 180 s), the same 4-tuple is a
  // new connection.
  agg.IngestDenial(
      MakeDenial("10.0.0.1", 45000, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono(200 * kSec)),
      t0 + 200 * kSec);
  e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->denied, 6u);
}

TEST(FlowAggregatorTest, DenialsAreWindowFailures) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  agg.IngestDenial(MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                   clock.mid_wall);
  agg.IngestDenial(MakeDenial("10.0.0.1", 46000, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono()),
                   clock.mid_wall);
  agg.IngestDenial(MakeDenial("10.0.0.1", 46000, "10.0.1.1", 8080, SHUNT_HOOK_TC, clock.mono()),
                   clock.mid_wall + kSec);
  auto w = agg.Window(clock.mid_wall + kSec, 10);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].first,
            (PodEdgeKey{"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"}));
  EXPECT_EQ(w[0].second.successes, 0u);
  EXPECT_EQ(w[0].second.failures, 2u);
  EXPECT_EQ(w[0].second.response.count(), 0u);
}

// 100,000 flows with distinct client ports over 500 pod pairs (500 edges),
// into room for 100 recent flows, 50 edges and 40 pod edges.
TEST(FlowAggregatorTest, MemoryIsBoundedUnderChurn) {
  const Clock clock;
  std::vector<model::Pod> pods;
  auto ip = [](int net, int i) {
    return "10." + std::to_string(net) + "." + std::to_string(i / 250) + "." +
           std::to_string(i % 250 + 1);
  };
  for (int i = 0; i < 500; ++i) {
    const std::string n = "c-" + std::to_string(i);
    // Half are deployments, half known only by their service account.
    pods.push_back(i % 2 ? MakePod("churn", n, n, ip(1, i), "deployment", n)
                         : MakePod("churn", n, n, ip(1, i)));
  }
  for (int j = 0; j < 20; ++j) {
    const std::string n = "s-" + std::to_string(j);
    pods.push_back(MakePod("churn", n, "server", ip(2, j), "statefulset", "s"));
  }
  ASSERT_EQ(pods.size(), 520u);
  FlowAggregator agg(FlowAggregator::Options{
      .recent_flows = 100, .max_edges = 50, .max_pod_edges = 40, .clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(pods));

  constexpr int kFlows = 100000, kChurn = 99800, kHot = 499;
  std::vector<std::string> client_ips, server_ips;
  for (int i = 0; i < 500; ++i) client_ips.push_back(ip(1, i));
  for (int j = 0; j < 20; ++j) server_ips.push_back(ip(2, j));
  // Round robin over pairs 0..498, then the last 200 flows all on pair 499,
  // new then.
  for (int n = 0; n < kFlows; ++n) {
    const int pair = n < kChurn ? n % 499 : kHot;
    FlowRecord f = MakeFlow(client_ips[pair].c_str(), static_cast<uint16_t>(1024 + n % 64000),
                            server_ips[pair % 20].c_str(), 8080,
                            n % 10 == 9 ? SHUNT_FLOW_RESET : SHUNT_FLOW_CLOSED, clock.mono());
    f.bytes[0] = 100;
    f.bytes[1] = 1000;
    if (n >= kChurn) AddResponses(f, {2000000});
    agg.Ingest(f);
  }

  const FlowAggregator::Totals t = agg.totals();
  EXPECT_EQ(t.flows, 100000u);
  EXPECT_EQ(t.recent, 100u);
  EXPECT_LE(t.edges, 50u);
  EXPECT_EQ(t.edges, 50u);
  EXPECT_LE(t.pod_edges, 40u);
  EXPECT_EQ(t.pod_edges, 40u);
  EXPECT_GT(t.edges_evicted, 0u);
  // Every churn flow finds its edge evicted (498 others came since): a new
  // edge each, 50 of which fit; then pair 499's.
  EXPECT_EQ(t.edges_evicted, uint64_t{kChurn - 50 + 1});
  // Pod edges: every churn flow is on a pod pair last seen 498 flows ago, so
  // at most one eviction each (which ones go within a slice is not ordered).
  EXPECT_GT(t.pod_edges_evicted, 0u);
  EXPECT_LE(t.pod_edges_evicted, uint64_t{kChurn - 40 + 1});

  // The last active edge is there, with its 200 flows.
  auto hot = FindEdge(
      agg, EdgeKey{"churn", "deployment/c-499", "c-499", "churn", "statefulset/s", "server", 8080});
  ASSERT_TRUE(hot.has_value());
  EXPECT_EQ(hot->flows, 200u);
  EXPECT_EQ(hot->successes, 180u);
  EXPECT_EQ(hot->reset, 20u);
  EXPECT_EQ(hot->bytes_to_server, 20000u);
  EXPECT_EQ(hot->bytes_to_client, 200000u);
  EXPECT_EQ(hot->response.count(), 200u);
  EXPECT_EQ(hot->response.sum_ns(), 400000000u);
  // An edge last seen early on is gone.
  EXPECT_FALSE(
      FindEdge(agg, EdgeKey{"churn", "sa/c-0", "c-0", "churn", "statefulset/s", "server", 8080})
          .has_value());

  auto w = agg.Window(clock.mid_wall, 60);
  EXPECT_EQ(w.size(), 40u);
  auto hot_pod = FindPodEdge(
      w, PodEdgeKey{"churn", "c-499", "deployment/c-499", "churn", "s-19", "statefulset/s"});
  ASSERT_TRUE(hot_pod.has_value());
  EXPECT_EQ(hot_pod->successes, 180u);
  EXPECT_EQ(hot_pod->failures, 20u);
  EXPECT_EQ(hot_pod->response.count(), 200u);

  // The recent flows are the last 100, all on the hot pair.
  std::vector<FlowView> recent = agg.Since(0, 1000);
  ASSERT_EQ(recent.size(), 100u);
  EXPECT_EQ(recent.front().seq, 99901u);
  EXPECT_EQ(recent.back().seq, 100000u);
  EXPECT_EQ(recent.back().client.pod, "c-499");
  EXPECT_EQ(recent.back().server.pod, "s-19");
  EXPECT_EQ(ntohs(recent.back().raw.key.client_port), 1024 + (kFlows - 1) % 64000);
}

TEST(FlowAggregatorTest, WindowCountsRecentSlicesOnly) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  const PodEdgeKey web1_api{"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"};
  const PodEdgeKey web2_api{"demo", "web-2", "deployment/web", "demo", "api-1", "statefulset/api"};
  const PodEdgeKey lonely_api{"demo", "lonely", "sa/lonely", "demo", "api-1", "statefulset/api"};
  const PodEdgeKey web3_api{"demo", "web-3", "deployment/web", "demo", "api-1", "statefulset/api"};

  // Offsets from mid-slice stay >= 3 s from slice boundaries.
  // Long ago (67 s before mid-slice: 7 slices back), web-3 -> api-1.
  agg.Ingest(
      MakeFlow("10.0.0.3", 47000, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono(-67 * kSec)));
  // 50 s ago (5 slices back), web-2 -> api-1: in a 60 s window only.
  FlowRecord old =
      MakeFlow("10.0.0.2", 47001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono(-50 * kSec));
  AddResponses(old, {7000000});
  agg.Ingest(old);
  // 22 s ago (2 slices back), lonely -> api-1: in a 30 s window (3 slices).
  agg.Ingest(
      MakeFlow("10.0.2.1", 47002, "10.0.1.1", 8080, SHUNT_FLOW_RESET, clock.mono(-22 * kSec)));
  // This slice, web-1 -> api-1: 3 closed, 1 reset, 1 refused; 4 responses.
  uint16_t port = 47100;
  for (uint8_t end : {SHUNT_FLOW_CLOSED, SHUNT_FLOW_CLOSED, SHUNT_FLOW_RESET, SHUNT_FLOW_CLOSED,
                      SHUNT_FLOW_REFUSED}) {
    FlowRecord f = MakeFlow("10.0.0.1", port++, "10.0.1.1", 8080, end, clock.mono(-1 * kSec));
    if (end == SHUNT_FLOW_CLOSED) AddResponses(f, {1000000});
    if (end == SHUNT_FLOW_RESET) AddResponses(f, {4000000});
    agg.Ingest(f);
  }
  // The 67 s old pod edge had nothing in the last minute: forgotten.
  EXPECT_EQ(agg.totals().pod_edges, 3u);

  auto w30 = agg.Window(clock.mid_wall, 30);
  EXPECT_EQ(w30.size(), 2u);
  auto now = FindPodEdge(w30, web1_api);
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->successes, 3u);
  EXPECT_EQ(now->failures, 2u);
  EXPECT_EQ(now->response.count(), 4u);
  EXPECT_EQ(now->response.sum_ns(), 7000000u);
  auto lonely = FindPodEdge(w30, lonely_api);
  ASSERT_TRUE(lonely.has_value());
  EXPECT_EQ(lonely->successes, 0u);
  EXPECT_EQ(lonely->failures, 1u);
  EXPECT_FALSE(FindPodEdge(w30, web2_api).has_value());
  EXPECT_FALSE(FindPodEdge(w30, web3_api).has_value());

  // 20 s is two slices: the 22 s old flow's is the third. 21 s rounds up to 3.
  auto w20 = agg.Window(clock.mid_wall, 20);
  EXPECT_EQ(w20.size(), 1u);
  EXPECT_TRUE(FindPodEdge(w20, web1_api).has_value());
  EXPECT_EQ(agg.Window(clock.mid_wall, 21).size(), 2u);

  auto w60 = agg.Window(clock.mid_wall, 60);
  EXPECT_EQ(w60.size(), 3u);
  auto web2 = FindPodEdge(w60, web2_api);
  ASSERT_TRUE(web2.has_value());
  EXPECT_EQ(web2->successes, 1u);
  EXPECT_EQ(web2->response.count(), 1u);
  EXPECT_EQ(web2->response.sum_ns(), 7000000u);
  EXPECT_FALSE(FindPodEdge(w60, web3_api).has_value());

  // window_s is clamped to 1..60: 0 and negative are this slice only,
  // anything above 60 is 60.
  for (int s : {0, -5, 1}) {
    auto w = agg.Window(clock.mid_wall, s);
    ASSERT_EQ(w.size(), 1u) << s;
    EXPECT_EQ(w[0].first, web1_api) << s;
    EXPECT_EQ(w[0].second.successes, 3u) << s;
  }
  for (int s : {61, 3600, 1 << 30}) EXPECT_EQ(agg.Window(clock.mid_wall, s).size(), 3u) << s;

  // Seen from a minute later, only what is then in its last 30 s: nothing.
  EXPECT_TRUE(agg.Window(clock.mid_wall + 60 * kSec, 30).empty());
  // From 20 s later, the current slice is two slices back: still in 30 s.
  auto later = agg.Window(clock.mid_wall + 20 * kSec, 30);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].first, web1_api);
}

// 20 hot pod pairs each with a flow between every new pod edge of churn,
// with room for 40 edges and 40 pod edges, all within one 10 s slice: the
// hot ones are always among the 40 most recently active, so a least
// recently active eviction never picks them.
constexpr int kHotRounds = 1000, kHotPairs = 20;

std::vector<model::Pod> HotAndColdPods() {
  std::vector<model::Pod> pods;
  for (int i = 0; i < 500; ++i) {
    const std::string n = "c-" + std::to_string(i);
    pods.push_back(MakePod("churn", n, n,
                           "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                           "deployment", n));
  }
  pods.push_back(MakePod("churn", "s", "server", "10.2.0.1", "statefulset", "s"));
  return pods;
}

void IngestHotAndCold(FlowAggregator& agg, const std::vector<model::Pod>& pods,
                      const Clock& clock) {
  uint16_t port = 1024;
  for (int k = 0; k < kHotRounds; ++k) {
    for (int h = 0; h < kHotPairs; ++h)
      agg.Ingest(
          MakeFlow(pods[h].ip.c_str(), port++, "10.2.0.1", 8080, SHUNT_FLOW_CLOSED, clock.mono()));
    const int cold = kHotPairs + k % (500 - kHotPairs);
    agg.Ingest(
        MakeFlow(pods[cold].ip.c_str(), port++, "10.2.0.1", 8080, SHUNT_FLOW_CLOSED, clock.mono()));
    if (port > 60000) port = 1024;
  }
}

TEST(FlowAggregatorTest, EdgeEvictionSparesActiveEdges) {
  const Clock clock;
  const std::vector<model::Pod> pods = HotAndColdPods();
  FlowAggregator agg(FlowAggregator::Options{
      .recent_flows = 10, .max_edges = 40, .max_pod_edges = 40, .clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(pods));
  IngestHotAndCold(agg, pods, clock);
  const FlowAggregator::Totals t = agg.totals();
  EXPECT_EQ(t.edges, 40u);
  // Every cold flow is a new edge; the first 20 fit beside the hot ones.
  EXPECT_EQ(t.edges_evicted, uint64_t{kHotRounds - (40 - kHotPairs)});
  for (int h = 0; h < kHotPairs; ++h) {
    const std::string n = "c-" + std::to_string(h);
    auto e = FindEdge(
        agg, EdgeKey{"churn", "deployment/" + n, n, "churn", "statefulset/s", "server", 8080});
    ASSERT_TRUE(e.has_value()) << n;
    EXPECT_EQ(e->flows, uint64_t{kHotRounds}) << n;
    EXPECT_EQ(e->successes, uint64_t{kHotRounds}) << n;
  }
  // The 20 most recent cold edges are the others.
  for (int k = kHotRounds - 20; k < kHotRounds; ++k) {
    const std::string n = "c-" + std::to_string(kHotPairs + k % (500 - kHotPairs));
    auto e = FindEdge(
        agg, EdgeKey{"churn", "deployment/" + n, n, "churn", "statefulset/s", "server", 8080});
    ASSERT_TRUE(e.has_value()) << n;
    EXPECT_EQ(e->flows, 1u) << n;  // evicted since its last round, 480 rounds ago
  }
}

TEST(FlowAggregatorTest, PodEdgeEvictionSparesActiveEdges) {
  const Clock clock;
  const std::vector<model::Pod> pods = HotAndColdPods();
  FlowAggregator agg(FlowAggregator::Options{
      .recent_flows = 10, .max_edges = 40, .max_pod_edges = 40, .clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(pods));
  IngestHotAndCold(agg, pods, clock);
  const FlowAggregator::Totals t = agg.totals();
  EXPECT_EQ(t.pod_edges, 40u);
  EXPECT_EQ(t.pod_edges_evicted, uint64_t{kHotRounds - (40 - kHotPairs)});
  auto w = agg.Window(clock.mid_wall, 60);
  EXPECT_EQ(w.size(), 40u);
  for (int h = 0; h < kHotPairs; ++h) {
    const std::string n = "c-" + std::to_string(h);
    auto e =
        FindPodEdge(w, PodEdgeKey{"churn", n, "deployment/" + n, "churn", "s", "statefulset/s"});
    ASSERT_TRUE(e.has_value()) << n << " was evicted";
    EXPECT_EQ(e->successes, uint64_t{kHotRounds}) << n << " was evicted and came back";
  }
}

// Flows and denials reach the aggregator from two threads, so one stamped just
// before a slice boundary may arrive just after one stamped after it.
TEST(FlowAggregatorTest, LateArrivalAcrossASliceBoundaryKeepsTheNewerSlice) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  const int64_t boundary = clock.mid_wall - kSlice / 2;  // start of the current slice
  const int64_t ms = 1000000;
  // web-1 -> api-1: denied 1 ms into the slice, then one denied 1 ms before
  // it arrives.
  agg.IngestDenial(MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                   boundary + ms);
  agg.IngestDenial(MakeDenial("10.0.0.1", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                   boundary - ms);
  const PodEdgeKey web1_api{"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"};
  auto w = agg.Window(boundary + ms, 60);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].second.failures, 2u);

  // 50 s later, other traffic. web-1 -> api-1's denial at boundary + 1 ms is
  // still within the last minute (its slice is 5 slices back).
  const int64_t later = boundary + 50 * kSec + ms;
  agg.IngestDenial(MakeDenial("10.0.0.2", 0, "10.0.1.1", 8080, SHUNT_HOOK_CONNECT4, clock.mono()),
                   later);
  w = agg.Window(later, 60);
  auto t = FindPodEdge(w, web1_api);
  ASSERT_TRUE(t.has_value()) << "forgotten: its newest slice was taken to be the older one";
  EXPECT_EQ(t->failures, 1u);  // the one at boundary - 1 ms is 6 slices back
}

// Live looks count what an open flow moved as it goes; its final record adds
// only the rest; a record that vanished (LRU eviction) is forgotten after
// three looks.
TEST(FlowAggregatorTest, LiveLooksCountOpenFlowsOnceAndTheEndAddsTheRest) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  FlowRecord f = MakeFlow("10.0.0.1", 40000, "10.0.1.1", 8080, SHUNT_FLOW_OPEN, 0);
  f.start_ns = clock.mono(-kSec);
  f.bytes[0] = 100;
  f.bytes[1] = 1000;
  AddResponses(f, {5000000, 5000000});
  agg.IngestLive(f, clock.mid_wall, 1);
  agg.EndScan(1);
  auto e = FindEdge(agg, kWebToApi);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->flows, 0u) << "the flow counts when it finishes";
  EXPECT_EQ(e->bytes_to_server, 100u);
  EXPECT_EQ(e->bytes_to_client, 1000u);
  EXPECT_EQ(e->response.count(), 2u);
  auto w = FindPodEdge(agg.Window(clock.mid_wall, 30),
                       {"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"});
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->response.count(), 2u);
  EXPECT_EQ(w->successes + w->failures, 0u);

  // Unchanged: nothing more. Then more traffic: only the difference.
  agg.IngestLive(f, clock.mid_wall, 2);
  f.bytes[0] = 150;
  AddResponses(f, {7000000});
  agg.IngestLive(f, clock.mid_wall, 3);
  e = FindEdge(agg, kWebToApi);
  EXPECT_EQ(e->bytes_to_server, 150u);
  EXPECT_EQ(e->response.count(), 3u);
  EXPECT_EQ(e->response.sum_ns(), 17000000u);

  // The end: one flow, a success, and only what the looks had not counted.
  f.bytes[1] = 1500;
  AddResponses(f, {1000000});
  f.end = SHUNT_FLOW_CLOSED;
  f.end_ns = clock.mono();
  agg.Ingest(f);
  e = FindEdge(agg, kWebToApi);
  EXPECT_EQ(e->flows, 1u);
  EXPECT_EQ(e->successes, 1u);
  EXPECT_EQ(e->bytes_to_server, 150u);
  EXPECT_EQ(e->bytes_to_client, 1500u);
  EXPECT_EQ(e->response.count(), 4u);
  EXPECT_EQ(e->response.sum_ns(), 18000000u);
  w = FindPodEdge(agg.Window(clock.mid_wall, 30),
                  {"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"});
  EXPECT_EQ(w->response.count(), 4u);
  EXPECT_EQ(w->successes, 1u);
  // The recent list has the whole record.
  auto recent = agg.Since(0, 10);
  ASSERT_EQ(recent.size(), 1u);
  EXPECT_EQ(recent[0].raw.rr_count, 4u);

  // A second flow seen live once, then evicted (no final record): counted
  // while seen, forgotten after three looks without it, never counted twice.
  FlowRecord g = MakeFlow("10.0.0.2", 40001, "10.0.1.1", 8080, SHUNT_FLOW_OPEN, 0);
  g.start_ns = clock.mono(-kSec);
  g.bytes[0] = 7;
  agg.IngestLive(g, clock.mid_wall, 4);
  for (uint64_t scan = 5; scan <= 8; ++scan) agg.EndScan(scan);
  // If it came back (same start), it would be new again: its bytes count anew.
  agg.IngestLive(g, clock.mid_wall, 9);
  EXPECT_EQ(FindEdge(agg, kWebToApi)->bytes_to_server, 150u + 7u + 7u);
}

TEST(FlowAggregatorTest, RuleNamesNameTheRule) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  agg.SetRuleNames(std::make_shared<const std::map<uint32_t, std::string>>(
      std::map<uint32_t, std::string>{{7, "ns/tt"}}));
  FlowRecord named = MakeFlow("10.0.0.1", 48000, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  named.rule_id = 7;
  FlowRecord unknown_rule = named;
  unknown_rule.rule_id = 8;
  FlowRecord no_rule = named;
  no_rule.rule_id = 0;
  agg.Ingest(named);
  agg.Ingest(unknown_rule);
  agg.Ingest(no_rule);
  std::vector<FlowView> v = agg.Since(0, 10);
  ASSERT_EQ(v.size(), 3u);
  EXPECT_EQ(v[0].rule, "ns/tt");
  EXPECT_EQ(v[1].rule, "");
  EXPECT_EQ(v[2].rule, "");
  EXPECT_EQ(agg.Describe(named).rule, "ns/tt");
  EXPECT_EQ(FlowJson(v[0]).at("rule"), "ns/tt");
  EXPECT_FALSE(FlowJson(v[1]).contains("rule"));
}

// Per server address: what the latency-aware balancer reads
// (TakeServerSamples, OpenByServer). The key is the server's IPv4 address
// as the kernel stores it (network order) above its port in host order.

uint64_t ServerKey(const char* ip, uint16_t port) {
  return (static_cast<uint64_t>(Be(ip)) << 16) | port;
}

// What was taken for `key`, or all zeros if nothing was.
FlowAggregator::ServerSamples SamplesOf(
    const absl::flat_hash_map<uint64_t, FlowAggregator::ServerSamples>& m, uint64_t key) {
  auto it = m.find(key);
  return it == m.end() ? FlowAggregator::ServerSamples{} : it->second;
}

// Open connections counted for `key`, 0 if none.
uint32_t OpenTo(const absl::flat_hash_map<uint64_t, uint32_t>& m, uint64_t key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

// A connection still open to `server`: its client end is local and open.
FlowRecord OpenFlow(const Clock& clock, const char* client, uint16_t cport, const char* server,
                    uint16_t sport) {
  FlowRecord f = MakeFlow(client, cport, server, sport, SHUNT_FLOW_OPEN, 0);
  f.start_ns = clock.mono(-kSec);  // its local client end has not closed: open
  return f;
}

// Each backend is scored on its own traffic: the same pod on another port,
// or another pod on the same port, is another server.
TEST(FlowAggregatorServerSamplesTest, FinalRecordsAccumulatePerServerAddress) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  FlowRecord a1 = MakeFlow("10.0.0.1", 40001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  a1.connect_ns = 50000;
  AddResponses(a1, {1000000, 3000000});
  FlowRecord a2 = MakeFlow("10.0.0.2", 40002, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  AddResponses(a2, {5000000});  // connect_ns 0: not measured, not a 0 ns sample
  FlowRecord b = MakeFlow("10.0.0.1", 40003, "10.0.1.1", 9090, SHUNT_FLOW_CLOSED, clock.mono());
  b.connect_ns = 70000;
  AddResponses(b, {2000000});
  FlowRecord c = MakeFlow("10.0.0.1", 40004, "10.0.2.1", 8080, SHUNT_FLOW_CLOSED, clock.mono());
  c.connect_ns = 30000;
  c.bytes[0] = 10;
  c.bytes[1] = 20;
  for (const FlowRecord* f : {&a1, &a2, &b, &c}) agg.Ingest(*f);

  const auto taken = agg.TakeServerSamples();
  ASSERT_EQ(taken.size(), 3u);
  ASSERT_TRUE(taken.contains(ServerKey("10.0.1.1", 8080)));
  const auto& a = taken.at(ServerKey("10.0.1.1", 8080));
  EXPECT_EQ(a.rr_sum_ns, 9000000u);
  EXPECT_EQ(a.rr_count, 3u);
  EXPECT_EQ(a.connect_sum_ns, 50000u);
  EXPECT_EQ(a.connect_count, 1u);
  EXPECT_EQ(a.failures, 0u);
  ASSERT_TRUE(taken.contains(ServerKey("10.0.1.1", 9090)));
  const auto& bs = taken.at(ServerKey("10.0.1.1", 9090));
  EXPECT_EQ(bs.rr_sum_ns, 2000000u);
  EXPECT_EQ(bs.rr_count, 1u);
  EXPECT_EQ(bs.connect_sum_ns, 70000u);
  EXPECT_EQ(bs.connect_count, 1u);
  EXPECT_EQ(bs.failures, 0u);
  ASSERT_TRUE(taken.contains(ServerKey("10.0.2.1", 8080)));
  const auto& cs = taken.at(ServerKey("10.0.2.1", 8080));
  EXPECT_EQ(cs.rr_sum_ns, 0u);
  EXPECT_EQ(cs.rr_count, 0u);
  EXPECT_EQ(cs.connect_sum_ns, 30000u);
  EXPECT_EQ(cs.connect_count, 1u);
  EXPECT_EQ(cs.failures, 0u);
}

// A busy long-lived connection keeps its backend's latency current through
// live looks; its final record must then add only what no look counted, or
// the balancer would see those samples twice.
TEST(FlowAggregatorServerSamplesTest, LiveLookResponsesCountOnceAndTheFinalRecordAddsTheRest) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  const uint64_t server = ServerKey("10.0.1.1", 8080);
  uint64_t rr_sum = 0, rr_count = 0, connect_sum = 0, connect_count = 0;
  auto take = [&] {
    const auto t = agg.TakeServerSamples();
    const auto s = SamplesOf(t, server);
    rr_sum += s.rr_sum_ns;
    rr_count += s.rr_count;
    connect_sum += s.connect_sum_ns;
    connect_count += s.connect_count;
    return s;
  };

  FlowRecord f = OpenFlow(clock, "10.0.0.1", 40000, "10.0.1.1", 8080);
  f.connect_ns = 40000;  // in the record all along: counts with the final record only
  f.bytes[0] = 100;
  f.bytes[1] = 1000;
  AddResponses(f, {5000000, 5000000});
  agg.IngestLive(f, clock.mid_wall, 1);
  agg.EndScan(1);
  auto s = take();
  EXPECT_EQ(s.rr_sum_ns, 10000000u);
  EXPECT_EQ(s.rr_count, 2u);
  EXPECT_EQ(s.connect_count, 0u);

  // Unchanged, then two more responses: only those.
  agg.IngestLive(f, clock.mid_wall, 2);
  agg.EndScan(2);
  s = take();
  EXPECT_EQ(s.rr_count, 0u);
  EXPECT_EQ(s.rr_sum_ns, 0u);
  f.bytes[0] = 150;
  f.bytes[1] = 1500;
  AddResponses(f, {7000000, 3000000});
  agg.IngestLive(f, clock.mid_wall, 3);
  agg.EndScan(3);
  s = take();
  EXPECT_EQ(s.rr_sum_ns, 10000000u);
  EXPECT_EQ(s.rr_count, 2u);

  // The end: one last response and the connect time.
  AddResponses(f, {1000000});
  f.end = SHUNT_FLOW_CLOSED;
  f.end_ns = clock.mono();
  f.flags |= SHUNT_FLOW_F_CLIENT_CLOSED;
  agg.Ingest(f);
  s = take();
  EXPECT_EQ(s.rr_sum_ns, 1000000u);
  EXPECT_EQ(s.rr_count, 1u);
  EXPECT_EQ(s.connect_sum_ns, 40000u);
  EXPECT_EQ(s.connect_count, 1u);
  EXPECT_EQ(s.failures, 0u);

  // Over all takes: the flow's own totals, exactly.
  EXPECT_EQ(rr_count, f.rr_count);
  EXPECT_EQ(rr_sum, f.rr_sum_ns);
  EXPECT_EQ(rr_count, 5u);
  EXPECT_EQ(rr_sum, 21000000u);
  EXPECT_EQ(connect_sum, 40000u);
  EXPECT_EQ(connect_count, 1u);

  // Without a take between the look and the end: one take, still no double count.
  FlowRecord g = OpenFlow(clock, "10.0.0.2", 40001, "10.0.1.1", 8080);
  g.bytes[0] = 10;
  AddResponses(g, {2000000, 4000000});
  agg.IngestLive(g, clock.mid_wall, 4);
  agg.EndScan(4);
  AddResponses(g, {6000000});
  g.end = SHUNT_FLOW_CLOSED;
  g.end_ns = clock.mono();
  agg.Ingest(g);
  s = SamplesOf(agg.TakeServerSamples(), server);
  EXPECT_EQ(s.rr_count, 3u);
  EXPECT_EQ(s.rr_sum_ns, 12000000u);
}

// A failure is a sign the backend is bad: refused, or reset while a request
// waited for its answer. A reset after the answer (a client hanging up, an
// idle timeout) or an orderly close is not the backend's fault. The whole
// record decides, not what live looks left of it.
TEST(FlowAggregatorServerSamplesTest, FailuresAreRefusalsAndResetsWithARequestUnanswered) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  struct Case {
    const char* what;
    const char* server;
    uint8_t end;
    uint64_t to_server, to_client;
    bool seen_live;
    uint32_t failures;
  };
  const std::vector<Case> cases = {
      {"refused", "10.0.3.1", SHUNT_FLOW_REFUSED, 0, 0, false, 1},
      {"reset, request unanswered", "10.0.3.2", SHUNT_FLOW_RESET, 100, 0, false, 1},
      {"reset after a response", "10.0.3.3", SHUNT_FLOW_RESET, 100, 500, false, 0},
      {"reset before any request", "10.0.3.4", SHUNT_FLOW_RESET, 0, 0, false, 0},
      {"closed without an answer", "10.0.3.5", SHUNT_FLOW_CLOSED, 100, 0, false, 0},
      {"closed with an answer", "10.0.3.6", SHUNT_FLOW_CLOSED, 100, 500, false, 0},
      {"reset unanswered, bytes seen live", "10.0.3.7", SHUNT_FLOW_RESET, 100, 0, true, 1},
      {"reset answered, bytes seen live", "10.0.3.8", SHUNT_FLOW_RESET, 100, 500, true, 0},
  };
  uint16_t port = 41000;
  for (const Case& c : cases) {
    FlowRecord f = OpenFlow(clock, "10.0.0.1", port++, c.server, 8080);
    f.bytes[0] = c.to_server;
    f.bytes[1] = c.to_client;
    if (c.seen_live) agg.IngestLive(f, clock.mid_wall, 1);
    f.end = c.end;
    f.end_ns = clock.mono();
    f.flags |= SHUNT_FLOW_F_CLIENT_CLOSED;
    agg.Ingest(f);
  }
  agg.EndScan(1);
  const auto taken = agg.TakeServerSamples();
  uint32_t total = 0;
  for (const Case& c : cases) {
    EXPECT_EQ(SamplesOf(taken, ServerKey(c.server, 8080)).failures, c.failures) << c.what;
    total += c.failures;
  }
  uint32_t taken_total = 0;
  for (const auto& [key, samples] : taken) taken_total += samples.failures;
  EXPECT_EQ(taken_total, total);
  EXPECT_EQ(total, 3u);
}

// The scorer takes what was measured since it last looked: a take hands the
// accumulator over, so nothing is counted in two takes.
TEST(FlowAggregatorServerSamplesTest, TakeEmptiesTheAccumulator) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  EXPECT_TRUE(agg.TakeServerSamples().empty());
  FlowRecord f = MakeFlow("10.0.0.1", 42001, "10.0.1.1", 8080, SHUNT_FLOW_REFUSED, clock.mono());
  f.connect_ns = 20000;
  AddResponses(f, {3000000});
  agg.Ingest(f);
  auto first = agg.TakeServerSamples();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first.at(ServerKey("10.0.1.1", 8080)).rr_count, 1u);
  EXPECT_EQ(first.at(ServerKey("10.0.1.1", 8080)).failures, 1u);
  EXPECT_TRUE(agg.TakeServerSamples().empty());

  f.key.client_port = htons(42002);
  f.end = SHUNT_FLOW_CLOSED;
  agg.Ingest(f);
  auto third = agg.TakeServerSamples();
  ASSERT_EQ(third.size(), 1u);
  const auto& s = third.at(ServerKey("10.0.1.1", 8080));
  EXPECT_EQ(s.rr_count, 1u) << "the first flow's sample was already taken";
  EXPECT_EQ(s.rr_sum_ns, 3000000u);
  EXPECT_EQ(s.connect_sum_ns, 20000u);
  EXPECT_EQ(s.connect_count, 1u);
  EXPECT_EQ(s.failures, 0u);
  // Taking is not forgetting the flows themselves.
  EXPECT_EQ(agg.FlowsTo(Be("10.0.1.1"), 8080), 2u);
}

// Open connections weigh in the score: they must be the ones of the last
// whole look, neither a look half done nor connections long gone.
TEST(FlowAggregatorServerSamplesTest, OpenByServerReflectsOnlyTheLastCompletedScan) {
  const Clock clock;
  FlowAggregator agg({.clock = &clock.fake});
  agg.SetDirectory(PeerDirectory::Build(DemoPods()));
  const uint64_t a = ServerKey("10.0.1.1", 8080), b = ServerKey("10.0.1.1", 9090);
  EXPECT_TRUE(agg.OpenByServer().empty());

  FlowRecord a1 = OpenFlow(clock, "10.0.0.1", 43001, "10.0.1.1", 8080);
  FlowRecord a2 = OpenFlow(clock, "10.0.0.2", 43002, "10.0.1.1", 8080);
  FlowRecord b1 = OpenFlow(clock, "10.0.0.1", 43003, "10.0.1.1", 9090);
  b1.flags |= SHUNT_FLOW_F_SERVER_LOCAL;  // both ends local: still one connection
  agg.IngestLive(a1, clock.mid_wall, 1);
  agg.IngestLive(a2, clock.mid_wall, 1);
  agg.IngestLive(b1, clock.mid_wall, 1);
  EXPECT_TRUE(agg.OpenByServer().empty()) << "scan 1 is not over";
  agg.EndScan(1);
  auto open = agg.OpenByServer();
  EXPECT_EQ(open.size(), 2u);
  EXPECT_EQ(OpenTo(open, a), 2u);
  EXPECT_EQ(OpenTo(open, b), 1u);

  // a2 and b1 end; a closed record still in the map (both ends closed, its
  // final record not read yet) is not an open connection.
  a2.end = SHUNT_FLOW_CLOSED;
  a2.end_ns = clock.mono();
  a2.flags |= SHUNT_FLOW_F_CLIENT_CLOSED;
  agg.Ingest(a2);
  b1.end = SHUNT_FLOW_CLOSED;
  b1.end_ns = clock.mono();
  b1.flags |= SHUNT_FLOW_F_CLIENT_CLOSED | SHUNT_FLOW_F_SERVER_CLOSED;
  agg.IngestLive(a1, clock.mid_wall, 2);
  agg.IngestLive(b1, clock.mid_wall, 2);
  open = agg.OpenByServer();
  EXPECT_EQ(open.size(), 2u) << "until scan 2 ends, scan 1 holds";
  EXPECT_EQ(OpenTo(open, a), 2u);
  agg.EndScan(2);
  open = agg.OpenByServer();
  EXPECT_EQ(open.size(), 1u);
  EXPECT_EQ(OpenTo(open, a), 1u);
  EXPECT_FALSE(open.contains(b)) << "its flows ended: nothing open there now";

  agg.EndScan(3);  // a look that saw nothing
  EXPECT_TRUE(agg.OpenByServer().empty());
}

// Memory stays bounded when a node talks to many addresses; the servers
// already tracked keep being measured.
TEST(FlowAggregatorServerSamplesTest, AtMostMaxServersAreTrackedAndTrackedOnesKeepCounting) {
  const Clock clock;
  FlowAggregator agg(FlowAggregator::Options{
      .recent_flows = 10, .max_edges = 10, .max_pod_edges = 10, .clock = &clock.fake});
  const uint32_t kMax = static_cast<uint32_t>(FlowAggregator::kMaxServers);
  const uint32_t base = ntohl(Be("10.128.0.0"));
  auto server = [&](uint32_t i) {
    FlowRecord f{};
    f.key.client_ip4 = Be("10.0.0.1");
    f.key.server_ip4 = htonl(base + i);
    f.key.client_port = htons(40000);
    f.key.server_port = htons(8080);
    f.start_ns = clock.mono(-kSec);
    f.verdict = SHUNT_FLOW_ALLOWED;
    f.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_ESTABLISHED;
    return f;
  };
  auto key = [&](uint32_t i) { return (static_cast<uint64_t>(htonl(base + i)) << 16) | 8080; };

  // One more server than fits, then another flow to the first one.
  for (uint32_t i = 0; i <= kMax; ++i) {
    agg.IngestLive(server(i), clock.mid_wall, 1);
  }
  FlowRecord again = server(0);
  again.key.client_port = htons(40001);
  agg.IngestLive(again, clock.mid_wall, 1);
  agg.EndScan(1);
  const auto open = agg.OpenByServer();
  EXPECT_EQ(open.size(), FlowAggregator::kMaxServers);
  EXPECT_FALSE(open.contains(key(kMax)));
  ASSERT_TRUE(open.contains(key(0)));
  EXPECT_EQ(open.at(key(0)), 2u);

  for (uint32_t i = 0; i <= kMax; ++i) {
    FlowRecord f = server(i);
    f.key.client_port = htons(41000);
    f.end = SHUNT_FLOW_REFUSED;
    f.end_ns = clock.mono();
    agg.Ingest(f);
  }
  FlowRecord refused_again = server(0);
  refused_again.key.client_port = htons(41001);
  refused_again.end = SHUNT_FLOW_REFUSED;
  refused_again.end_ns = clock.mono();
  agg.Ingest(refused_again);
  const auto taken = agg.TakeServerSamples();
  EXPECT_EQ(taken.size(), FlowAggregator::kMaxServers);
  EXPECT_FALSE(taken.contains(key(kMax)));
  ASSERT_TRUE(taken.contains(key(0)));
  EXPECT_EQ(taken.at(key(0)).failures, 2u);
}

// FlowJson: one flow as the API and shuntctl show it.

FlowView ViewOf(const FlowRecord& f) {
  static const auto dir = PeerDirectory::Build(DemoPods());
  FlowView v;
  v.raw = f;
  v.seq = 12;
  v.start_wall_ns = 1700000000000000000;
  v.end_wall_ns = f.end_ns ? v.start_wall_ns + 2500000 : 0;
  v.client = dir->Find(f.key.client_ip4);
  v.server = dir->Find(f.key.server_ip4);
  return v;
}

TEST(FlowAggregatorFlowJsonTest, TcpPathClosedFlowHasEveryField) {
  FlowRecord f = MakeFlow("10.0.0.1", 49000, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, 5 * kSec);
  f.bytes[0] = 300;
  f.bytes[1] = 4000;
  f.msgs[0] = 3;
  f.msgs[1] = 4;
  f.connect_ns = 125000;
  f.srtt_us = 90;
  f.min_rtt_us = 40;
  f.retrans = 2;
  f.flags |= SHUNT_FLOW_F_SC_CLIENT;  // half of short-circuit is still the TCP path
  AddResponses(f, {1000000, 3000000});
  const nlohmann::json j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("path"), "tcp");
  EXPECT_EQ(j.at("verdict"), "allowed");
  EXPECT_EQ(j.at("end"), "closed");
  EXPECT_EQ(j.at("seq"), 12);
  EXPECT_EQ(j.at("bytes_to_server"), 300);
  EXPECT_EQ(j.at("bytes_to_client"), 4000);
  EXPECT_EQ(j.at("msgs_to_server"), 3);
  EXPECT_EQ(j.at("msgs_to_client"), 4);
  EXPECT_EQ(j.at("requests"), 2);
  EXPECT_EQ(j.at("start_unix_ns"), 1700000000000000000);
  EXPECT_EQ(j.at("end_unix_ns"), 1700000000002500000);
  EXPECT_EQ(j.at("duration_us"), 2500);
  EXPECT_DOUBLE_EQ(j.at("connect_us").get<double>(), 125.0);
  EXPECT_EQ(j.at("srtt_us"), 90);
  EXPECT_EQ(j.at("min_rtt_us"), 40);
  EXPECT_EQ(j.at("retransmits"), 2);
  ASSERT_TRUE(j.contains("response_latency_us"));
  EXPECT_DOUBLE_EQ(j.at("response_latency_us").at("mean").get<double>(), 2000.0);
  const double p50 = j.at("response_latency_us").at("p50").get<double>();
  const double p99 = j.at("response_latency_us").at("p99").get<double>();
  EXPECT_GE(p50, 1000.0);
  EXPECT_LE(p50, 3000.0);
  EXPECT_GE(p99, p50);
  // Estimates, within the slowest sample's bucket.
  EXPECT_LE(p99, LatencyHistogram::BucketUpper(static_cast<int>(shunt_hist_bucket(3000000))) / 1e3);
  EXPECT_GE(p99, LatencyHistogram::BucketLower(static_cast<int>(shunt_hist_bucket(3000000))) / 1e3);
  EXPECT_FALSE(j.contains("rule"));

  EXPECT_EQ(j.at("client").at("ip"), "10.0.0.1");
  EXPECT_EQ(j.at("client").at("port"), 49000);
  EXPECT_EQ(j.at("client").at("namespace"), "demo");
  EXPECT_EQ(j.at("client").at("pod"), "web-1");
  EXPECT_EQ(j.at("client").at("workload"), "deployment/web");
  EXPECT_EQ(j.at("client").at("service_account"), "web");
  EXPECT_EQ(j.at("server").at("ip"), "10.0.1.1");
  EXPECT_EQ(j.at("server").at("port"), 8080);
  EXPECT_EQ(j.at("server").at("workload"), "statefulset/api");
}

TEST(FlowAggregatorFlowJsonTest, ShortCircuitNeedsBothEnds) {
  FlowRecord f = MakeFlow("10.0.0.1", 49001, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, 5 * kSec);
  f.srtt_us = 90;
  f.flags |= SHUNT_FLOW_F_SC_CLIENT | SHUNT_FLOW_F_SC_SERVER;
  nlohmann::json j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("path"), "short-circuit");
  EXPECT_FALSE(j.contains("srtt_us"));  // TCP stats mean nothing without TCP
  EXPECT_FALSE(j.contains("min_rtt_us"));
  EXPECT_FALSE(j.contains("retransmits"));
  f.flags &= ~SHUNT_FLOW_F_SC_CLIENT;
  j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("path"), "tcp");
  EXPECT_EQ(j.at("srtt_us"), 90);
}

TEST(FlowAggregatorFlowJsonTest, OptionalFieldsOnlyWhenMeasured) {
  // Open, no connect time, no responses, to an unknown server.
  FlowRecord f = MakeFlow("10.0.0.1", 49002, "192.168.9.9", 443, SHUNT_FLOW_OPEN, 0);
  f.srtt_us = 90;
  f.verdict = SHUNT_FLOW_UNMESHED;
  nlohmann::json j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("end"), "open");
  EXPECT_EQ(j.at("verdict"), "unmeshed");
  EXPECT_EQ(j.at("requests"), 0);
  EXPECT_FALSE(j.contains("response_latency_us"));
  EXPECT_FALSE(j.contains("connect_us"));
  EXPECT_FALSE(j.contains("srtt_us"));  // not ended yet
  EXPECT_FALSE(j.contains("end_unix_ns"));
  EXPECT_FALSE(j.contains("duration_us"));
  EXPECT_EQ(j.at("server").at("workload"), "unmeshed");
  EXPECT_EQ(j.at("server").at("ip"), "192.168.9.9");
  EXPECT_EQ(j.at("server").at("port"), 443);
  EXPECT_FALSE(j.at("server").contains("pod"));
  EXPECT_FALSE(j.at("server").contains("namespace"));

  // A reset flow on the TCP path has its TCP stats.
  f.end = SHUNT_FLOW_RESET;
  f.end_ns = 5 * kSec;
  j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("end"), "reset");
  EXPECT_EQ(j.at("srtt_us"), 90);

  // A denial never got a connection: no TCP stats.
  f.end = SHUNT_FLOW_DENIED_END;
  f.verdict = SHUNT_FLOW_DENIED;
  j = FlowJson(ViewOf(f));
  EXPECT_EQ(j.at("end"), "denied");
  EXPECT_EQ(j.at("verdict"), "denied");
  EXPECT_FALSE(j.contains("srtt_us"));
}

TEST(FlowAggregatorFlowJsonTest, NamesOfVerdictsAndEnds) {
  EXPECT_STREQ(VerdictName(SHUNT_FLOW_UNMESHED), "unmeshed");
  EXPECT_STREQ(VerdictName(SHUNT_FLOW_ALLOWED), "allowed");
  EXPECT_STREQ(VerdictName(SHUNT_FLOW_L7), "l7");
  EXPECT_STREQ(VerdictName(SHUNT_FLOW_AUDIT), "audit");
  EXPECT_STREQ(VerdictName(SHUNT_FLOW_DENIED), "denied");
  EXPECT_STREQ(VerdictName(99), "unmeshed");
  EXPECT_STREQ(EndName(SHUNT_FLOW_OPEN), "open");
  EXPECT_STREQ(EndName(SHUNT_FLOW_CLOSED), "closed");
  EXPECT_STREQ(EndName(SHUNT_FLOW_RESET), "reset");
  EXPECT_STREQ(EndName(SHUNT_FLOW_REFUSED), "refused");
  EXPECT_STREQ(EndName(SHUNT_FLOW_DENIED_END), "denied");
}

}  // namespace
}  // namespace shunt::telemetry
