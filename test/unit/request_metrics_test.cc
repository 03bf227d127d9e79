// The L7 layer's request metrics: one series per edge and route, counts by
// status class, cumulative latency buckets, and a bound on the series.
#include "proxy/server/request_metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

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

// The recent requests by address, for the agent's windows: taken once,
// then gone; their latency in the kernel's buckets.
TEST(RequestMetricsTest, RecentRequestsByAddressAreTakenOnce) {
  RequestMetrics m;
  auto addr = [](const char* text, uint16_t port) {
    auto d = ParseConnectAuthority(absl::StrCat(text, ":", port));
    EXPECT_TRUE(d.ok()) << text;
    return *d;
  };
  const Destination client = addr("10.0.0.1", 1), server = addr("10.0.1.1", 8080);
  m.AddRecent(client, server, "demo/api#read", 200, 2000, 1, false);
  m.AddRecent(client, server, "demo/api#read", 503, 2000, 0, false);
  m.AddRecent(client, server, "", 403, 10, 0, true);
  m.AddRecent(client, addr("10.0.1.2", 8080), "demo/api#read", 0, 7, 0, false);
  // Parsed as the agent reads it: text.
  const nlohmann::json taken = nlohmann::json::parse(m.TakeRecent().dump());
  EXPECT_EQ(taken["dropped"], 0);
  ASSERT_EQ(taken["requests"].size(), 3u);
  int seen = 0;
  for (const auto& r : taken["requests"]) {
    EXPECT_EQ(r["client"], "10.0.0.1");
    EXPECT_EQ(r["port"], 8080);
    if (r["server"] == "10.0.1.1" && r["route"] == "demo/api#read") {
      ++seen;
      EXPECT_EQ(r["classes"], nlohmann::json::parse("[0,0,1,0,0,1]"));
      EXPECT_EQ(r["retries"], 1);
      EXPECT_EQ(r["denied"], 0);
      EXPECT_EQ(r["sum_ns"], 4000000);
      EXPECT_EQ(r["hist"], nlohmann::json::array({{shunt_hist_bucket(2000000), 2}}));
    } else if (r["route"] == "") {
      ++seen;
      EXPECT_EQ(r["classes"], nlohmann::json::parse("[0,0,0,0,1,0]"));
      EXPECT_EQ(r["denied"], 1);
    } else {
      ++seen;
      EXPECT_EQ(r["server"], "10.0.1.2");
      EXPECT_EQ(r["classes"][0], 1);  // no response
    }
  }
  EXPECT_EQ(seen, 3);
  EXPECT_TRUE(m.TakeRecent()["requests"].empty());
  // The cumulative series are another view of the same requests: untouched.
  EXPECT_EQ(m.Report()["series"].size(), 0u);  // AddRecent alone feeds none
}

TEST(RequestMetricsTest, RecentSeriesAreBoundedAndTheRestCounted) {
  RequestMetrics m;
  auto d = ParseConnectAuthority("10.0.0.1:80");
  ASSERT_TRUE(d.ok());
  for (size_t i = 0; i < RequestMetrics::kMaxRecent + 3; ++i)
    m.AddRecent(*d, *d, absl::StrCat("r", i), 200, 1, 0, false);
  const nlohmann::json taken = m.TakeRecent();
  EXPECT_EQ(taken["requests"].size(), RequestMetrics::kMaxRecent);
  EXPECT_EQ(taken["dropped"], 3);
  EXPECT_EQ(m.TakeRecent()["dropped"], 0);
}

// Each thread counts into a shard of its own; what the report and the
// recent requests show is the sum over the threads, one series per edge
// and route however many threads counted it.
TEST(RequestMetricsTest, ThreadsCountingTheSameSeriesAddUp) {
  RequestMetrics m;
  auto d = ParseConnectAuthority("10.0.0.1:80");
  ASSERT_TRUE(d.ok());
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        m.Add("a/x", "b/y", 80, "r", t % 2 ? 200 : 503, 1000);
        m.AddRecent(*d, *d, "r", 200, 1000, 1, false);
      }
    });
  // The reporter reads while they count.
  for (int i = 0; i < 20; ++i) (void)m.Report();
  uint64_t recent_count = 0;
  auto take = [&] {
    const nlohmann::json taken = m.TakeRecent();
    for (const auto& r : taken["requests"]) recent_count += r["retries"].get<uint64_t>();
  };
  take();
  for (auto& t : threads) t.join();
  take();
  const nlohmann::json r = m.Report();
  ASSERT_EQ(r["series"].size(), 1u) << r.dump();
  EXPECT_EQ(r["series"][0]["count"], kThreads * kEach);
  EXPECT_EQ(r["series"][0]["classes"]["2xx"], kThreads / 2 * kEach);
  EXPECT_EQ(r["series"][0]["classes"]["5xx"], kThreads / 2 * kEach);
  EXPECT_EQ(r["series"][0]["buckets"].back(), kThreads * kEach);
  EXPECT_EQ(recent_count, uint64_t{kThreads} * kEach);
  EXPECT_EQ(r["series_dropped"], 0);
}

// The bounds are on distinct series, however many threads count each: a
// series every worker counts takes one place, not one per worker.
TEST(RequestMetricsTest, TheBoundsCountEachSeriesOnceWhateverTheThreads) {
  RequestMetrics m;
  auto d = ParseConnectAuthority("10.0.0.1:80");
  ASSERT_TRUE(d.ok());
  constexpr int kThreads = 4;
  auto count_all = [&](size_t n, const char* prefix) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        for (size_t i = 0; i < n; ++i) {
          m.Add("a/x", "b/y", 80, absl::StrCat(prefix, i), 200, 1);
          m.AddRecent(*d, *d, absl::StrCat(prefix, i), 200, 1, 0, false);
        }
      });
    for (auto& t : threads) t.join();
  };
  count_all(RequestMetrics::kMaxRecent, "r");
  nlohmann::json taken = m.TakeRecent();
  EXPECT_EQ(taken["requests"].size(), RequestMetrics::kMaxRecent);
  EXPECT_EQ(taken["dropped"], 0);
  // The next window has room for as many again.
  count_all(RequestMetrics::kMaxRecent, "s");
  taken = m.TakeRecent();
  EXPECT_EQ(taken["requests"].size(), RequestMetrics::kMaxRecent);
  EXPECT_EQ(taken["dropped"], 0);
  for (const auto& r : taken["requests"]) ASSERT_EQ(r["classes"][2], kThreads) << r.dump();
  // Series: 2 x kMaxRecent so far; fill up to the bound, then one more is
  // dropped.
  count_all(RequestMetrics::kMaxSeries - 2 * RequestMetrics::kMaxRecent, "t");
  nlohmann::json r = m.Report();
  EXPECT_EQ(r["series"].size(), RequestMetrics::kMaxSeries);
  EXPECT_EQ(r["series_dropped"], 0);
  m.Add("a/x", "b/y", 80, "one-too-many", 200, 1);
  r = m.Report();
  EXPECT_EQ(r["series"].size(), RequestMetrics::kMaxSeries);
  EXPECT_EQ(r["series_dropped"], 1);
}

// Windows taken while threads count: no window holds more than the bound,
// and every request is in exactly one window or counted as dropped.
TEST(RequestMetricsTest, WindowsTakenWhileThreadsCountLoseNothingAndKeepTheBound) {
  RequestMetrics m;
  auto d = ParseConnectAuthority("10.0.0.1:80");
  ASSERT_TRUE(d.ok());
  constexpr int kThreads = 4, kEach = 20000;
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        m.AddRecent(*d, *d, absl::StrCat("t", t, "-", i % 3000), 200, 1, 0, false);
      --running;
    });
  uint64_t seen = 0, windows = 0;
  size_t largest = 0;
  auto take = [&] {
    const nlohmann::json taken = m.TakeRecent();
    ++windows;
    largest = std::max(largest, taken["requests"].size());
    seen += taken["dropped"].get<uint64_t>();
    for (const auto& r : taken["requests"]) seen += r["classes"][2].get<uint64_t>();
  };
  while (running > 0) take();
  for (auto& t : threads) t.join();
  take();
  EXPECT_EQ(seen, uint64_t{kThreads} * kEach) << windows << " windows";
  EXPECT_LE(largest, RequestMetrics::kMaxRecent) << windows << " windows";
}

}  // namespace
}  // namespace shunt::proxy
