// FlowAggregator's per-server figures for the latency-aware balancer.
#include "agent/telemetry/flow_aggregator.h"
#include "test/unit/flow_test_util.h"

namespace shunt::telemetry {
namespace {

using namespace flow_test;

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

}  // namespace
}  // namespace shunt::telemetry
