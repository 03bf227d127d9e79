// The proxy's counters: each thread adds into a shard of its own, and what
// is read (Get, the report) is the sum over the threads.
#include "proxy/server/proxy_stats.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace shunt::proxy {
namespace {

TEST(ProxyStatsTest, CountsFromManyThreadsAddUp) {
  ProxyStats stats;
  // More threads than shards: some share one, and nothing is lost.
  constexpr int kThreads = 70, kEach = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        stats.Add(Stat::kL7Requests);
        stats.Add(Stat::kBytesToPeer, 3);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(stats.Get(Stat::kL7Requests), uint64_t{kThreads} * kEach);
  EXPECT_EQ(stats.Get(Stat::kBytesToPeer), uint64_t{kThreads} * kEach * 3);
  EXPECT_EQ(stats.Get(Stat::kL7Retries), 0u);
  const nlohmann::json report = stats.TakeReport();
  EXPECT_EQ(report["counters"]["l7_requests"], kThreads * kEach) << report.dump();
}

}  // namespace
}  // namespace shunt::proxy
