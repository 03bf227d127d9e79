// The L7 layer's retry budget, outlier ejection and per-request balancer
// (proxy/http), on a clock the tests move by hand.
#include <map>
#include <random>

#include "absl/random/random.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/http/balancer.h"
#include "proxy/http/outlier.h"
#include "proxy/http/retry_budget.h"

namespace shunt::proxy::http {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;

TEST(RetryBudgetTest, RetriesAreAShareOfTrafficPlusAFloor) {
  RetryBudget b({.ratio = 0.2, .min_per_second = 1, .window_ns = 10 * kS});
  int64_t now = 100 * kS;
  // 1000 requests in the window: 200 retries, plus the floor of 1/s x 10 s.
  for (int i = 0; i < 1000; ++i) b.Deposit(now);
  int retried = 0;
  while (b.TryWithdraw(now)) ++retried;
  EXPECT_EQ(retried, 210);
  // An outage where every request fails and is retried: the upstream sees
  // at most 1.2x the requests (plus the floor), never 2x.
  RetryBudget outage({.ratio = 0.2, .min_per_second = 1, .window_ns = 10 * kS});
  int sent = 0;
  for (int i = 0; i < 10000; ++i) {
    now += kMs;
    outage.Deposit(now);
    ++sent;
    if (outage.TryWithdraw(now)) ++sent;
  }
  EXPECT_LE(sent, 12000 + 20);
  EXPECT_GE(sent, 11900);
}

TEST(RetryBudgetTest, OldTrafficLeavesTheWindow) {
  RetryBudget b({.ratio = 0.5, .min_per_second = 0, .window_ns = 10 * kS});
  for (int i = 0; i < 100; ++i) b.Deposit(0);
  EXPECT_EQ(b.Available(5 * kS), 50);
  EXPECT_EQ(b.Available(11 * kS), 0) << "the requests are out of the window";
  EXPECT_FALSE(b.TryWithdraw(11 * kS));
}

TEST(EndpointHealthTest, ConsecutiveFailuresEjectAndAProbeDecides) {
  EndpointHealth h({.consecutive_failures = 3, .ejection_ns = 10 * kS, .max_ejection_ns = 30 * kS});
  int64_t now = 0;
  h.Failure(now);
  h.Failure(now);
  h.Success(now);  // the run is broken
  h.Failure(now);
  h.Failure(now);
  EXPECT_TRUE(h.Available(now));
  h.Failure(now);
  EXPECT_EQ(h.state(now), EndpointHealth::State::kEjected);
  EXPECT_FALSE(h.Available(now + 9 * kS));
  EXPECT_TRUE(h.Available(now + 10 * kS));
  EXPECT_EQ(h.state(now + 10 * kS), EndpointHealth::State::kProbing);
  // The probe fails: ejected again at once, twice as long.
  now += 10 * kS;
  h.Failure(now);
  EXPECT_EQ(h.state(now), EndpointHealth::State::kEjected);
  EXPECT_EQ(h.ejected_until_ns() - now, 20 * kS);
  now += 20 * kS;
  h.Failure(now);  // probing, fails: the next doubling is capped
  EXPECT_EQ(h.ejected_until_ns() - now, 30 * kS);
  now += 30 * kS;
  h.Success(now);  // the probe succeeds: restored
  EXPECT_EQ(h.state(now), EndpointHealth::State::kHealthy);
  EXPECT_STREQ(EndpointHealth::StateName(h.state(now)), "healthy");
}

services::BackendAddr Addr(uint8_t last) { return {static_cast<uint32_t>(last) << 24, 8080}; }

TEST(RequestBalancerTest, ASlowEndpointLosesItsShareAndTheReasonIsTold) {
  RequestBalancer::Options o;
  o.scorer.floor_ns = 100'000;
  RequestBalancer lb({{Addr(1), "shop/fast"}, {Addr(2), "shop/slow"}, {Addr(3), "shop/fast2"}}, o);
  std::mt19937 rng(7);
  int64_t now = kS;
  std::map<int, int> picks;
  for (int i = 0; i < 3000; ++i) {
    now += kMs;
    auto c = lb.Pick(now, rng);
    ASSERT_TRUE(c.has_value());
    ++picks[c->picked];
    lb.Finished(c->picked, now, c->picked == 1 ? 50 * kMs : 1 * kMs, false);
  }
  EXPECT_LT(picks[1], 3000 / 20) << "the slow endpoint keeps under 5%";
  EXPECT_GT(picks[0], 1000);
  EXPECT_GT(picks[2], 1000);
  // Of the recent choices (a fixed seed: the same ones each run), those
  // that drew the slow endpoint first took the other, and say why.
  int slow_first = 0;
  for (const auto& c : lb.recent()) {
    if (c.candidates[0] != 1) continue;
    ++slow_first;
    EXPECT_NE(c.picked, 1);
    EXPECT_THAT(c.why, HasSubstr("lower score: "));
    EXPECT_THAT(c.why, HasSubstr("is over 20% below"));
  }
  EXPECT_GT(slow_first, 0);
  EXPECT_EQ(lb.recent().size(), o.remember);
}

TEST(RequestBalancerTest, OutstandingRequestsSpreadEqualLatencies) {
  RequestBalancer lb({{Addr(1), "a"}, {Addr(2), "b"}}, {});
  std::mt19937 rng(1);
  // Both measured equally, then requests to "a" pile up unanswered.
  lb.Finished(0, kS, kMs, false);
  lb.Finished(1, kS, kMs, false);
  std::map<int, int> picks;
  for (int i = 0; i < 100; ++i) ++picks[lb.Pick(kS, rng)->picked];
  // Each pick raises its endpoint's score: the two stay within one another.
  EXPECT_NEAR(picks[0], picks[1], 10);
  EXPECT_EQ(lb.outstanding(0) + lb.outstanding(1), 100u);
}

TEST(RequestBalancerTest, EjectedEndpointsAreSkippedUnlessAllAre) {
  RequestBalancer::Options o;
  o.health.consecutive_failures = 2;
  RequestBalancer lb({{Addr(1), "a"}, {Addr(2), "b"}}, o);
  absl::BitGen rng;
  lb.Finished(1, kS, kMs, true);
  lb.Finished(1, kS, kMs, true);
  for (int i = 0; i < 50; ++i) {
    auto c = lb.Pick(kS, rng);
    EXPECT_EQ(c->picked, 0);
    EXPECT_EQ(c->why, "the only endpoint available");
    lb.Finished(0, kS, kMs, false);
  }
  lb.Finished(0, kS, kMs, true);
  lb.Finished(0, kS, kMs, true);
  auto c = lb.Pick(kS, rng);
  EXPECT_TRUE(c->panic);
  EXPECT_THAT(c->why, HasSubstr("every endpoint ejected"));
}

// A 5xx answered fast is a fast answer to the scorer (latency only, as
// Linkerd's EWMA): what keeps a fast-failing endpoint from taking the
// traffic is its ejection after consecutive failures, and it gets requests
// again once the ejection ends and a probe succeeds.
TEST(RequestBalancerTest, AFastFailingEndpointIsEjectedThenProbedBackIn) {
  RequestBalancer::Options o;
  o.health.consecutive_failures = 2;
  o.health.ejection_ns = kS;
  RequestBalancer lb({{Addr(1), "broken"}, {Addr(2), "steady"}}, o);
  absl::BitGen rng;
  int64_t now = kS;
  int failures = 0;
  std::map<int, int> picks;
  for (int i = 0; i < 100; ++i, now += kMs) {
    auto c = lb.Pick(now, rng);
    ++picks[c->picked];
    const bool broken = c->picked == 0;
    failures += broken;
    // broken answers 500 in 0.1 ms, steady 200 in 2 ms.
    lb.Finished(c->picked, now, broken ? kMs / 10 : 2 * kMs, broken, /*responded=*/true);
  }
  EXPECT_EQ(failures, 2) << "ejected at its second failure, for the rest of the second";
  EXPECT_EQ(lb.health(0).state(now), EndpointHealth::State::kEjected);
  EXPECT_EQ(lb.health(0).ejections_total(), 1u);
  // The ejection over, it probes; a success (healed) restores it.
  now = 3 * kS;
  EXPECT_EQ(lb.health(0).state(now), EndpointHealth::State::kProbing);
  bool probed = false;
  for (int i = 0; i < 100 && !probed; ++i, now += kMs) {
    auto c = lb.Pick(now, rng);
    probed = c->picked == 0;
    lb.Finished(c->picked, now, kMs, false, true);
  }
  EXPECT_TRUE(probed);
  EXPECT_EQ(lb.health(0).state(now), EndpointHealth::State::kHealthy);
}

}  // namespace
}  // namespace shunt::proxy::http
