// FlowJson: one flow as the local API and shuntctl show it.
#include "agent/telemetry/flow_aggregator.h"
#include "test/unit/flow_test_util.h"

namespace shunt::telemetry {
namespace {

using namespace flow_test;

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

namespace shunt::telemetry {
namespace {

// A flow carried between nodes by the mTLS proxies: path mtls, and the
// identity on the other node as a SPIFFE ID (the server's on the sending
// node, the client's on the receiving one).
TEST(FlowAggregatorFlowJsonTest, MtlsFlowsNameThePeerOnTheOtherNode) {
  FlowRecord f = MakeFlow("10.0.0.1", 49000, "10.0.1.1", 8080, SHUNT_FLOW_CLOSED, 5 * kSec);
  f.flags |= SHUNT_FLOW_F_MTLS;
  nlohmann::json j = FlowJson(ViewOf(f), "example.org");
  EXPECT_EQ(j.at("path"), "mtls");
  EXPECT_EQ(j.at("peer_identity"), "spiffe://example.org/ns/demo/sa/api");
  f.flags |= SHUNT_FLOW_F_MTLS_INBOUND;
  j = FlowJson(ViewOf(f), "example.org");
  EXPECT_EQ(j.at("path"), "mtls");
  EXPECT_EQ(j.at("peer_identity"), "spiffe://example.org/ns/demo/sa/web");
  // Not carried: no peer identity.
  f.flags &= ~(SHUNT_FLOW_F_MTLS | SHUNT_FLOW_F_MTLS_INBOUND);
  EXPECT_FALSE(FlowJson(ViewOf(f)).contains("peer_identity"));
}

}  // namespace
}  // namespace shunt::telemetry
