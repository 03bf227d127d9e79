// FlowRecord: decoding the two sizes of ring record, and joining a live
// record with its histogram only when both are of the same connection.
#include "agent/telemetry/flow_record.h"

#include <arpa/inet.h>

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "shunt/abi/flow.h"

namespace shunt::telemetry {
namespace {

shunt_flow Record(uint16_t client_port, uint64_t start_ns, uint64_t rr_count) {
  shunt_flow f{};
  f.key.client_ip4 = htonl(0x0a000001);
  f.key.server_ip4 = htonl(0x0a000102);
  f.key.client_port = htons(client_port);
  f.key.server_port = htons(8080);
  f.start_ns = start_ns;
  f.bytes[0] = 100;
  f.bytes[1] = 2000;
  f.rr_count = rr_count;
  f.rr_sum_ns = rr_count * 5000;
  f.end = SHUNT_FLOW_CLOSED;
  return f;
}

TEST(FlowRecordTest, ARecordWithoutHistogramDecodesWithEmptyBuckets) {
  const shunt_flow f = Record(40000, 7, 0);
  FlowRecord out;
  out.rr_hist[3] = 99;  // whatever was there before is not kept
  ASSERT_TRUE(DecodeFlowEvent(&f, sizeof(f), &out));
  EXPECT_EQ(ntohs(out.key.client_port), 40000);
  EXPECT_EQ(out.bytes[1], 2000u);
  EXPECT_EQ(out.end, SHUNT_FLOW_CLOSED);
  for (uint32_t b : out.rr_hist) EXPECT_EQ(b, 0u);
}

TEST(FlowRecordTest, ARecordWithHistogramDecodesBoth) {
  shunt_flow_event ev{};
  ev.flow = Record(40001, 7, 3);
  ev.rr_hist[shunt_hist_bucket(5000)] = 2;
  ev.rr_hist[SHUNT_HIST_BUCKETS - 1] = 1;
  FlowRecord out;
  ASSERT_TRUE(DecodeFlowEvent(&ev, sizeof(ev), &out));
  EXPECT_EQ(out.rr_count, 3u);
  EXPECT_EQ(out.rr_hist[shunt_hist_bucket(5000)], 2u);
  EXPECT_EQ(out.rr_hist[SHUNT_HIST_BUCKETS - 1], 1u);
}

TEST(FlowRecordTest, AnyOtherSizeIsRejectedAndLeavesTheOutputAlone) {
  std::vector<uint8_t> buf(sizeof(shunt_flow_event) + 8, 0xab);
  FlowRecord out{};
  out.bytes[0] = 42;
  for (size_t size : {size_t{0}, sizeof(shunt_flow) - 8, sizeof(shunt_flow) + 8,
                      sizeof(shunt_flow_event) - 8, sizeof(shunt_flow_event) + 8}) {
    EXPECT_FALSE(DecodeFlowEvent(buf.data(), size, &out)) << size;
    EXPECT_EQ(out.bytes[0], 42u) << size;
  }
}

TEST(FlowRecordTest, ALiveRecordTakesTheHistogramOfItsOwnConnectionOnly) {
  LiveHists hists;
  const shunt_flow f = Record(40002, 1000, 4);
  shunt_flow_hist h{};
  h.start_ns = 1000;
  h.rr_hist[10] = 4;
  hists[FlowInstance{f.key, f.start_ns}] = h;
  // Left behind by an earlier connection on the same 4-tuple.
  shunt_flow_hist stale{};
  stale.start_ns = 500;
  stale.rr_hist[20] = 9;
  hists[FlowInstance{f.key, stale.start_ns}] = stale;

  const FlowRecord r = WithHist(f, hists);
  EXPECT_EQ(r.rr_count, 4u);
  EXPECT_EQ(r.rr_hist[10], 4u);
  EXPECT_EQ(r.rr_hist[20], 0u) << "another connection's histogram was joined";

  const FlowRecord later = WithHist(Record(40002, 2000, 1), hists);
  for (uint32_t b : later.rr_hist) EXPECT_EQ(b, 0u) << "no histogram of its own yet";
  const FlowRecord other_port = WithHist(Record(40003, 1000, 1), hists);
  for (uint32_t b : other_port.rr_hist) EXPECT_EQ(b, 0u);
}

TEST(FlowRecordTest, ARecordWithoutResponsesIgnoresAnyHistogram) {
  LiveHists hists;
  const shunt_flow f = Record(40004, 1000, 0);
  shunt_flow_hist h{};
  h.start_ns = 1000;
  h.rr_hist[1] = 1;
  hists[FlowInstance{f.key, f.start_ns}] = h;
  const FlowRecord r = WithHist(f, hists);
  EXPECT_EQ(r.rr_hist[1], 0u);
}

}  // namespace
}  // namespace shunt::telemetry
