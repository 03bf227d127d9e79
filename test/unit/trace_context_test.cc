#include "proxy/http/trace_context.h"

#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::proxy::http {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

std::string Get(const Headers& h, absl::string_view name) {
  for (const auto& [n, v] : h)
    if (absl::EqualsIgnoreCase(n, name)) return v;
  return "";
}

TEST(TraceContextTest, AW3cTraceGoesOnWithANewSpanAndTracestateUntouched) {
  std::mt19937 rng(3);
  Headers h = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
               {"tracestate", "congo=t61rcWkgMzE"}};
  HopSpan s = StartHop(h, rng);
  EXPECT_TRUE(s.w3c);
  EXPECT_EQ(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(s.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(s.span_id.size(), 16u);
  EXPECT_NE(s.span_id, s.parent_id);
  Propagate(s, &h);
  EXPECT_EQ(Get(h, "traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-" + s.span_id + "-01");
  EXPECT_EQ(Get(h, "tracestate"), "congo=t61rcWkgMzE");
  // A second hop: same trace, the first hop's span as parent, a new span.
  HopSpan next = StartHop(h, rng);
  EXPECT_EQ(next.trace_id, s.trace_id);
  EXPECT_EQ(next.parent_id, s.span_id);
  EXPECT_NE(next.span_id, s.span_id);
}

TEST(TraceContextTest, NewIdsAreLowerHexWithEveryDigitAtEveryPosition) {
  std::mt19937_64 rng(7);
  std::set<std::string> traces, spans;
  std::vector<std::set<char>> seen(32);  // digits seen at each trace id position
  for (int i = 0; i < 2000; ++i) {
    HopSpan s = StartHop({}, rng);
    ASSERT_EQ(s.trace_id.size(), 32u);
    ASSERT_EQ(s.span_id.size(), 16u);
    for (size_t k = 0; k < 32; ++k) {
      ASSERT_TRUE(absl::ascii_isxdigit(s.trace_id[k]) && !absl::ascii_isupper(s.trace_id[k]))
          << s.trace_id;
      seen[k].insert(s.trace_id[k]);
    }
    traces.insert(s.trace_id);
    spans.insert(s.span_id);
  }
  EXPECT_EQ(traces.size(), 2000u);
  EXPECT_EQ(spans.size(), 2000u);
  // 2000 draws: each of the 16 digits at each position (missing one: ~1e-53).
  for (size_t k = 0; k < 32; ++k) EXPECT_EQ(seen[k].size(), 16u) << "position " << k;
}

TEST(TraceContextTest, MalformedContextStartsANewTrace) {
  std::mt19937 rng(4);
  for (const char* bad :
       {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "garbage"}) {
    HopSpan s = StartHop({{"traceparent", bad}}, rng);
    EXPECT_FALSE(s.w3c) << bad;
    EXPECT_TRUE(s.parent_id.empty()) << bad;
    EXPECT_EQ(s.trace_id.size(), 32u);
    EXPECT_NE(s.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736") << bad;
  }
  // A later version may add fields.
  std::string t, p;
  bool sampled = false;
  EXPECT_TRUE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x", &t, &p,
                               &sampled));
  EXPECT_FALSE(sampled);
}

TEST(TraceContextTest, B3HeadersAreCarriedOnBothWays) {
  std::mt19937 rng(5);
  Headers single = {{"b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90"}};
  HopSpan s = StartHop(single, rng);
  EXPECT_TRUE(s.b3_single);
  EXPECT_EQ(s.parent_id, "e457b5a2e4d86bd1");
  Propagate(s, &single);
  EXPECT_EQ(Get(single, "b3"),
            "80f198ee56343ba864fe8b2a57d3eff7-" + s.span_id + "-1-e457b5a2e4d86bd1");
  EXPECT_EQ(Get(single, "traceparent"), "00-80f198ee56343ba864fe8b2a57d3eff7-" + s.span_id + "-01");

  Headers multi = {{"X-B3-TraceId", "a3ce929d0e0e4736"},
                   {"X-B3-SpanId", "00f067aa0ba902b7"},
                   {"X-B3-Sampled", "0"}};
  HopSpan m = StartHop(multi, rng);
  EXPECT_TRUE(m.b3_multi);
  EXPECT_EQ(m.trace_id, "0000000000000000a3ce929d0e0e4736") << "64-bit ids widened";
  EXPECT_FALSE(m.sampled);
  Propagate(m, &multi);
  EXPECT_EQ(Get(multi, "x-b3-spanid"), m.span_id);
  EXPECT_EQ(Get(multi, "x-b3-parentspanid"), "00f067aa0ba902b7");
  EXPECT_EQ(Get(multi, "x-b3-sampled"), "0");
  EXPECT_EQ(Get(multi, "traceparent"), "00-0000000000000000a3ce929d0e0e4736-" + m.span_id + "-00");
}

TEST(TraceContextTest, ARequestWithoutContextStartsATrace) {
  std::mt19937 rng(6);
  Headers h = {{"host", "shop"}};
  HopSpan s = StartHop(h, rng);
  EXPECT_TRUE(s.parent_id.empty());
  Propagate(s, &h);
  std::string t, p;
  bool sampled = false;
  ASSERT_TRUE(ParseTraceparent(Get(h, "traceparent"), &t, &p, &sampled));
  EXPECT_EQ(t, s.trace_id);
  EXPECT_EQ(p, s.span_id);
  EXPECT_EQ(Get(h, "b3"), "") << "B3 only when the request came with it";
}

TEST(TraceContextTest, AnAddedHeaderIsMadeFromASpareEntry) {
  std::mt19937 rng(5);
  Headers h = {{"host", "books"}};
  Headers spare(1);
  spare[0].second.reserve(80);
  const char* kept = spare[0].second.data();
  HopSpan s = StartHop(h, rng);
  Propagate(s, &h, &spare);
  EXPECT_TRUE(spare.empty());
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[1].first, "traceparent");
  EXPECT_EQ(h[1].second.data(), kept) << "the spare's memory, not a new allocation";
  EXPECT_EQ(h[1].second, "00-" + s.trace_id + "-" + s.span_id + "-01");
}

}  // namespace
}  // namespace shunt::proxy::http
