// FlowRecord: decoding the two sizes of ring record, and joining a live
// record with its histogram only when both are of the same connection; the
// record's flags word, which both ends' sockops OR bits into.
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

// A closing end's OR: its _CLOSED bit and how it saw the connection end.
uint32_t Closing(uint32_t side, uint8_t end) {
  return (side << SHUNT_FLOW_F_CLOSED_SHIFT) | SHUNT_FLOW_F_END(end);
}

constexpr uint32_t kClient = SHUNT_FLOW_F_CLIENT_LOCAL, kServer = SHUNT_FLOW_F_SERVER_LOCAL;

TEST(FlowFlagsTest, OpenEndsAreTheLocalEndsNotYetClosed) {
  EXPECT_EQ(shunt_flow_open_ends(0), 0u);
  const uint32_t both = kClient | kServer | SHUNT_FLOW_F_SHORT_CIRCUIT | SHUNT_FLOW_F_ESTABLISHED;
  EXPECT_EQ(shunt_flow_open_ends(both), kClient | kServer);
  EXPECT_EQ(shunt_flow_open_ends(both | Closing(kClient, SHUNT_FLOW_RESET)), kServer);
  EXPECT_EQ(shunt_flow_open_ends(both | Closing(kClient, SHUNT_FLOW_RESET) |
                                 Closing(kServer, SHUNT_FLOW_CLOSED)),
            0u);
  // How ends ended is not an end.
  EXPECT_EQ(shunt_flow_open_ends(kClient | SHUNT_FLOW_F_END(SHUNT_FLOW_CLOSED) |
                                 SHUNT_FLOW_F_END(SHUNT_FLOW_RESET) |
                                 SHUNT_FLOW_F_END(SHUNT_FLOW_REFUSED)),
            kClient);
}

// Whichever order two closing ends' ORs land in, exactly one of them ships
// the record; an end that never joined, or closes again, ships nothing.
TEST(FlowFlagsTest, ExactlyOneOfTwoClosingEndsShipsTheRecord) {
  const uint32_t client = Closing(kClient, SHUNT_FLOW_RESET);
  const uint32_t server = Closing(kServer, SHUNT_FLOW_CLOSED);
  for (bool client_first : {true, false}) {
    const uint32_t first = client_first ? client : server, second = client_first ? server : client;
    uint32_t flags = kClient | kServer | SHUNT_FLOW_F_ESTABLISHED;
    const uint32_t old_first = flags;
    flags |= first;
    const uint32_t old_second = flags;
    flags |= second;
    EXPECT_FALSE(shunt_flow_closes_last(old_first, first)) << client_first;
    EXPECT_TRUE(shunt_flow_closes_last(old_second, second)) << client_first;
    EXPECT_EQ(shunt_flow_open_ends(flags), 0u);
  }
  const uint32_t only_client = kClient | SHUNT_FLOW_F_ESTABLISHED;
  EXPECT_TRUE(shunt_flow_closes_last(only_client, client));
  EXPECT_FALSE(shunt_flow_closes_last(only_client, server)) << "the server end never joined";
  EXPECT_FALSE(shunt_flow_closes_last(only_client | client, server));
  EXPECT_FALSE(shunt_flow_closes_last(only_client | client, client)) << "closed twice";
}

}  // namespace
}  // namespace shunt::telemetry
