// The L7 layer's request metrics: one series per edge and route, counts by
// status class, cumulative latency buckets, and a bound on the series.
#include "proxy/server/request_metrics.h"

#include <gtest/gtest.h>

namespace shunt::proxy {
namespace {

const nlohmann::json* Find(const nlohmann::json& report, const std::string& route) {
  for (const auto& s : report["series"])
    if (s["route"] == route) return &s;
  return nullptr;
}

TEST(RequestMetricsTest, CountsByRouteAndClassWithCumulativeBuckets) {
  RequestMetrics m;
  m.Add("demo/client", "demo/server", 8080, "demo/api#read", 200, 800);        // 0.8 ms
  m.Add("demo/client", "demo/server", 8080, "demo/api#read", 204, 3'000);      // 3 ms
  m.Add("demo/client", "demo/server", 8080, "demo/api#read", 503, 7'000'000);  // over 5 s
  m.Add("demo/client", "demo/server", 8080, "", 403, 50);
  m.Add("demo/client", "demo/server", 8080, "demo/api#read", 0, 10);  // no response
  const nlohmann::json r = m.Report();
  ASSERT_EQ(r["series"].size(), 2u);
  const nlohmann::json* read = Find(r, "demo/api#read");
  ASSERT_NE(read, nullptr);
  EXPECT_EQ((*read)["src"], "demo/client");
  EXPECT_EQ((*read)["dst"], "demo/server");
  EXPECT_EQ((*read)["port"], 8080);
  EXPECT_EQ((*read)["classes"]["2xx"], 2);
  EXPECT_EQ((*read)["classes"]["5xx"], 1);
  EXPECT_EQ((*read)["classes"]["none"], 1);
  EXPECT_FALSE((*read)["classes"].contains("4xx"));
  EXPECT_EQ((*read)["count"], 4);
  // Cumulative: <= 1 ms: the 0.8 ms and the 10 us one; <= 5 ms adds 3 ms;
  // only +Inf holds the 7 s one.
  const auto& b = (*read)["buckets"];
  ASSERT_EQ(b.size(), RequestMetrics::kBounds.size() + 1);
  EXPECT_EQ(b[0], 2);                                   // le 0.001
  EXPECT_EQ(b[2], 3);                                   // le 0.005
  EXPECT_EQ(b[RequestMetrics::kBounds.size() - 1], 3);  // le 5
  EXPECT_EQ(b.back(), 4);
  EXPECT_NEAR((*read)["sum_s"].get<double>(), 7.00381, 1e-9);
  const nlohmann::json* denied = Find(r, "");
  ASSERT_NE(denied, nullptr);
  EXPECT_EQ((*denied)["classes"]["4xx"], 1);
}

TEST(RequestMetricsTest, EdgesAndPortsAreSeparateSeriesAndTheirNumberIsBounded) {
  RequestMetrics m;
  m.Add("a/x", "b/y", 80, "r", 200, 1);
  m.Add("a/x", "b/y", 81, "r81", 200, 1);
  m.Add("a/z", "b/y", 80, "rz", 200, 1);
  EXPECT_EQ(m.Report()["series"].size(), 3u);
  for (size_t i = 0; i < RequestMetrics::kMaxSeries; ++i)
    m.Add("a/x", "b/y", 80, "route-" + std::to_string(i), 200, 1);
  const nlohmann::json r = m.Report();
  EXPECT_EQ(r["series"].size(), RequestMetrics::kMaxSeries);
  EXPECT_EQ(r["series_dropped"], 3);
  // An existing series still counts when the table is full.
  m.Add("a/x", "b/y", 80, "r", 500, 1);
  EXPECT_EQ(Find(m.Report(), "r")->at("count"), 2);
}

}  // namespace
}  // namespace shunt::proxy
