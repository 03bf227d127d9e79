// FlowAggregator: per-edge golden metrics from finished flows and policy
// denials, the recent-flows ring, per-pod-edge windows, memory bounds under
// churn.
#include "agent/telemetry/flow_aggregator.h"

#include "test/unit/flow_test_util.h"

namespace shunt::telemetry {
namespace {

using namespace flow_test;

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
  // web-1 -> api-1:8080, reset after it was established, carried in the
  // mTLS tunnel between nodes.
  FlowRecord f3 = MakeFlow("10.0.0.1", 40003, "10.0.1.1", 8080, SHUNT_FLOW_RESET, clock.mono());
  f3.flags |= SHUNT_FLOW_F_MTLS;
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
  EXPECT_EQ(web_api->mtls, 1u);
  // The per-pod windows (`shuntctl stat`) count it too: one of web-1's
  // finished flows to api-1 went through the tunnel.
  uint64_t window_mtls = 0, window_flows = 0;
  for (const auto& [k, t] : agg.Window(clock.mid_wall, 60)) {
    window_mtls += t.mtls;
    window_flows += t.successes + t.failures;
  }
  EXPECT_EQ(window_mtls, 1u);
  EXPECT_GT(window_flows, window_mtls);
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

}  // namespace
}  // namespace shunt::telemetry
