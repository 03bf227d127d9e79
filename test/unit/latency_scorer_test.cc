// LatencyScorer: the peak-EWMA maths (peak, time-weighted mixing, decay,
// failures), the score's load factor, rounding and saturation, and a
// simulated power-of-two-choices balancer on top of it: a backend that turns
// 10x slower loses its traffic and wins it back when fast again.
#include "agent/services/latency_scorer.h"

#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace shunt::services {
namespace {

constexpr int64_t kUs = 1'000;
constexpr int64_t kMs = 1'000'000;
constexpr int64_t kS = 1'000'000'000;
constexpr int64_t kTau = 2 * kS;   // the default decay_ns
constexpr int64_t kT0 = 100 * kS;  // an arbitrary monotonic "now"

const BackendAddr kA{0x0a000001, 8080};
const BackendAddr kB{0x0a000002, 8080};
const BackendAddr kC{0x0a000003, 8080};

TEST(LatencyScorerTest, FirstSampleIsTheEstimate) {
  LatencyScorer s;
  s.Observe(kA, kT0, 3 * kMs, 4, 0);
  EXPECT_EQ(s.EwmaNs(kA, kT0), 3 * kMs);
  EXPECT_EQ(s.Score(kA, kT0), 3000u);
}

TEST(LatencyScorerTest, SlowerSampleReplacesTheEstimateAtOnce) {
  LatencyScorer s;
  s.Observe(kA, kT0, 1 * kMs, 10, 0);
  s.Observe(kA, kT0 + 100 * kMs, 10 * kMs, 1, 0);
  EXPECT_EQ(s.EwmaNs(kA, kT0 + 100 * kMs), 10 * kMs);  // not a blend: the peak
  EXPECT_EQ(s.Score(kA, kT0 + 100 * kMs), 10000u);
}

TEST(LatencyScorerTest, FasterSampleMixesWithTheTimeWeight) {
  LatencyScorer s;
  s.Observe(kA, kT0, 10 * kMs, 1, 0);
  const int64_t dt = 500 * kMs;
  s.Observe(kA, kT0 + dt, 1 * kMs, 1, 0);
  // The cost decayed to now, then mixed with the sample by the same weight.
  const double w = std::exp(-static_cast<double>(dt) / kTau);
  const double want = (10.0 * kMs * w) * w + 1.0 * kMs * (1 - w);  // ~6.29 ms
  ASSERT_TRUE(s.EwmaNs(kA, kT0 + dt).has_value());
  EXPECT_NEAR(static_cast<double>(*s.EwmaNs(kA, kT0 + dt)), want, 1.0);
  EXPECT_EQ(s.Score(kA, kT0 + dt), static_cast<uint32_t>(std::ceil(want / kUs)));

  // Longer since the last sample: the new one weighs more.
  LatencyScorer later;
  later.Observe(kA, kT0, 10 * kMs, 1, 0);
  later.Observe(kA, kT0 + 4 * dt, 1 * kMs, 1, 0);
  const double w4 = std::exp(-4.0 * dt / kTau);
  EXPECT_NEAR(static_cast<double>(*later.EwmaNs(kA, kT0 + 4 * dt)),
              (10.0 * kMs * w4) * w4 + 1.0 * kMs * (1 - w4), 1.0);
  EXPECT_LT(*later.EwmaNs(kA, kT0 + 4 * dt), *s.EwmaNs(kA, kT0 + 4 * dt));
}

TEST(LatencyScorerTest, SamplesJustAboveAndBelowTheDecayedCostLandNearIt) {
  // Idle for tau * ln 2: the score shows 0.5 ms. Whatever a sample says, the
  // new cost lies between it and 0.5 ms, and nearby samples land nearby:
  // no sample moves the score away from itself.
  const int64_t idle = static_cast<int64_t>(kTau * std::log(2.0));
  auto after = [&](int64_t x) {
    LatencyScorer s;
    s.Observe(kA, kT0, 1 * kMs, 1, 0);
    s.Observe(kA, kT0 + idle, x, 1, 0);
    return static_cast<double>(*s.EwmaNs(kA, kT0 + idle));
  };
  EXPECT_NEAR(after(510 * kUs), 510.0 * kUs, 1.0);  // above: the peak
  const double below = after(490 * kUs);
  EXPECT_GE(below, 490.0 * kUs);
  EXPECT_LE(below, 500.0 * kUs);
  EXPECT_NEAR(after(100 * kUs), 0.5 * 500 * kUs + 0.5 * 100 * kUs, 1.0);  // w = 1/2 both ways
}

TEST(LatencyScorerTest, FastProbeOfADecayedSlowBackendRecoversAtOnce) {
  // Slow 4.6 s ago, now as fast as the others (1 ms): one fast report puts
  // it level with them, instead of back above them (from the undecayed
  // 10 ms it would be ~1.9 ms, and it would need many more probes).
  LatencyScorer s;
  s.Observe(kC, kT0, 10 * kMs, 1, 0);
  const int64_t probe = kT0 + static_cast<int64_t>(kTau * std::log(10.0)) + 10 * kMs;
  ASSERT_LE(s.Score(kC, probe), 1000u);
  s.Observe(kC, probe, 1 * kMs, 5, 0);
  EXPECT_EQ(s.Score(kC, probe), 1000u);
  // Still slow: back up at once.
  s.Observe(kC, probe + 20 * kMs, 10 * kMs, 5, 0);
  EXPECT_EQ(s.Score(kC, probe + 20 * kMs), 10000u);
}

TEST(LatencyScorerTest, SeveralSamplesInOneCallCountAsOneObservationOfTheirMean) {
  LatencyScorer one, many;
  one.Observe(kA, kT0, 10 * kMs, 1, 0);
  many.Observe(kA, kT0, 10 * kMs, 1, 0);
  one.Observe(kA, kT0 + kS, 2 * kMs, 1, 0);
  many.Observe(kA, kT0 + kS, 2 * kMs, 500, 0);
  EXPECT_EQ(one.EwmaNs(kA, kT0 + kS), many.EwmaNs(kA, kT0 + kS));
}

TEST(LatencyScorerTest, EstimateDecaysTowardZeroWithoutSamples) {
  LatencyScorer s;
  s.Observe(kA, kT0, 4 * kMs, 1, 0);
  EXPECT_NEAR(static_cast<double>(*s.EwmaNs(kA, kT0 + kTau)), 4.0 * kMs / std::exp(1.0), 1.0);
  EXPECT_NEAR(static_cast<double>(*s.EwmaNs(kA, kT0 + 2 * kTau)), 4.0 * kMs / std::exp(2.0), 1.0);
  EXPECT_EQ(s.Score(kA, kT0 + kTau),
            static_cast<uint32_t>(std::ceil(4000.0 / std::exp(1.0))));  // 1472
  // A 10x slower backend falls below the others after tau * ln 10.
  LatencyScorer slow;
  slow.Observe(kA, kT0, 10 * kMs, 1, 0);
  const int64_t cross = static_cast<int64_t>(kTau * std::log(10.0));
  EXPECT_GT(slow.Score(kA, kT0 + cross - 10 * kMs), 1000u);
  EXPECT_LE(slow.Score(kA, kT0 + cross + 10 * kMs), 1000u);
}

TEST(LatencyScorerTest, ReadingDoesNotCommitTheDecay) {
  LatencyScorer read, unread;
  for (LatencyScorer* s : {&read, &unread}) s->Observe(kA, kT0, 10 * kMs, 1, 0);
  for (int64_t t = kT0; t < kT0 + kS; t += 10 * kMs) read.Score(kA, t);
  for (LatencyScorer* s : {&read, &unread}) s->Observe(kA, kT0 + kS, 1 * kMs, 1, 0);
  EXPECT_EQ(read.EwmaNs(kA, kT0 + kS), unread.EwmaNs(kA, kT0 + kS));
  EXPECT_EQ(read.Score(kA, kT0 + 2 * kS), unread.Score(kA, kT0 + 2 * kS));
}

TEST(LatencyScorerTest, ClockGoingBackwardsCountsAsNoTime) {
  LatencyScorer s;
  s.Observe(kA, kT0, 4 * kMs, 1, 0);
  EXPECT_EQ(s.EwmaNs(kA, kT0 - kS), 4 * kMs);
  s.Observe(kA, kT0 - kS, 1 * kMs, 1, 0);  // w = 1: the old estimate stands
  EXPECT_EQ(s.EwmaNs(kA, kT0), 4 * kMs);
}

TEST(LatencyScorerTest, FailureJumpsToThePenalty) {
  LatencyScorer s;
  s.Observe(kA, kT0, 1 * kMs, 100, 0);
  s.Observe(kA, kT0 + 10 * kMs, 0, 0, 1);
  EXPECT_EQ(s.EwmaNs(kA, kT0 + 10 * kMs), kS);  // the default penalty, 1 s
  EXPECT_EQ(s.Score(kA, kT0 + 10 * kMs), 1'000'000u);

  // With fast samples in the same report: still the penalty.
  LatencyScorer mixed({.failure_penalty_ns = 250 * kMs});
  mixed.Observe(kA, kT0, 1 * kMs, 100, 0);
  mixed.Observe(kA, kT0 + 10 * kMs, 1 * kMs, 100, 3);
  EXPECT_EQ(mixed.EwmaNs(kA, kT0 + 10 * kMs), 250 * kMs);

  // A backend whose only news is failures is measured, and avoided.
  LatencyScorer only;
  only.Observe(kB, kT0, 0, 0, 1);
  EXPECT_EQ(only.EwmaNs(kB, kT0), kS);
}

TEST(LatencyScorerTest, NothingReportedChangesNothing) {
  LatencyScorer s;
  s.Observe(kA, kT0, 5 * kMs, 0, 0);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.EwmaNs(kA, kT0), std::nullopt);
  s.Observe(kA, kT0, 1 * kMs, 1, 0);
  s.Observe(kA, kT0 + kS, 50 * kMs, 0, 0);
  EXPECT_NEAR(static_cast<double>(*s.EwmaNs(kA, kT0 + kS)), 1.0 * kMs / std::exp(0.5), 1.0);
}

TEST(LatencyScorerTest, OutstandingConnectionsMultiplyTheScore) {
  LatencyScorer s;
  s.Observe(kA, kT0, 2 * kMs, 1, 0);
  EXPECT_EQ(s.Score(kA, kT0), 2000u);
  s.SetOutstanding(kA, 3);
  EXPECT_EQ(s.Outstanding(kA), 3u);
  EXPECT_EQ(s.Score(kA, kT0), 8000u);
  s.SetOutstanding(kA, 0);
  EXPECT_EQ(s.Score(kA, kT0), 2000u);
  EXPECT_EQ(s.Outstanding(kB), 0u);
}

TEST(LatencyScorerTest, ScoreRoundsUpToMicrosecondsAndIsNeverZeroOnceMeasured) {
  LatencyScorer s;
  s.Observe(kA, kT0, 1, 1, 0);
  EXPECT_EQ(s.Score(kA, kT0), 1u);
  s.Observe(kB, kT0, 1001, 1, 0);
  EXPECT_EQ(s.Score(kB, kT0), 2u);
  s.Observe(kC, kT0, 0, 1, 0);  // a zero sample (coarse clock) is still a measurement
  EXPECT_EQ(s.Score(kC, kT0), 1u);
  // Decayed to nothing: still 1, behind every never-measured backend.
  EXPECT_EQ(s.Score(kA, kT0 + 1000 * kTau), 1u);
  EXPECT_EQ(s.EwmaNs(kA, kT0 + 1000 * kTau), 0);
}

TEST(LatencyScorerTest, ScoreSaturatesBelowUint32Max) {
  constexpr uint32_t kMax = std::numeric_limits<uint32_t>::max() - 1;
  LatencyScorer s;
  s.Observe(kA, kT0, 5000 * kS, 1, 0);  // 5e9 us on its own
  EXPECT_EQ(s.Score(kA, kT0), kMax);
  s.Observe(kB, kT0, kS, 1, 0);  // 1e6 us x 5000 connections
  s.SetOutstanding(kB, 4999);
  EXPECT_EQ(s.Score(kB, kT0), kMax);
  s.SetOutstanding(kB, std::numeric_limits<uint32_t>::max());  // + 1 must not wrap
  EXPECT_EQ(s.Score(kB, kT0), kMax);
  s.SetOutstanding(kB, 4000);  // 4.001e9: just fits
  EXPECT_EQ(s.Score(kB, kT0), 4'001'000'000u);
  LatencyScorer huge({.failure_penalty_ns = std::numeric_limits<int64_t>::max()});
  huge.Observe(kC, kT0, 0, 0, 1);
  EXPECT_EQ(huge.Score(kC, kT0), kMax);
}

TEST(LatencyScorerTest, NeverMeasuredBackendScoresTheInitialCost) {
  LatencyScorer s;
  EXPECT_EQ(s.Score(kA, kT0), 0u);
  s.SetOutstanding(kA, 5);
  EXPECT_EQ(s.Score(kA, kT0), 0u);  // 0 is "try me first", whatever the load
  EXPECT_EQ(s.EwmaNs(kA, kT0), std::nullopt);

  LatencyScorer prior({.initial_ns = 1500 * kUs});
  EXPECT_EQ(prior.Score(kA, kT0), 1500u);
  prior.SetOutstanding(kA, 1);
  EXPECT_EQ(prior.Score(kA, kT0), 3000u);
  EXPECT_EQ(prior.EwmaNs(kA, kT0), std::nullopt);
  prior.Observe(kA, kT0, 1 * kMs, 1, 0);  // measured: the prior is gone
  EXPECT_EQ(prior.Score(kA, kT0), 2000u);
}

TEST(LatencyScorerTest, RetainForgetsBackendsNotKept) {
  LatencyScorer s;
  s.Observe(kA, kT0, 1 * kMs, 1, 0);
  s.Observe(kB, kT0, 2 * kMs, 1, 0);
  s.SetOutstanding(kB, 2);
  s.SetOutstanding(kC, 1);  // open connections, not yet measured
  EXPECT_EQ(s.size(), 3u);
  s.Retain({kA});
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.EwmaNs(kA, kT0), 1 * kMs);
  EXPECT_EQ(s.EwmaNs(kB, kT0), std::nullopt);
  EXPECT_EQ(s.Score(kB, kT0), 0u);
  EXPECT_EQ(s.Outstanding(kB), 0u);
  EXPECT_EQ(s.Outstanding(kC), 0u);
  s.SetOutstanding(kB, 0);  // nothing to remember
  EXPECT_EQ(s.size(), 1u);
}

TEST(LatencyScorerTest, BackendsAreKeyedByAddressAndPort) {
  LatencyScorer s;
  const BackendAddr other_port{kA.ip_be, 9090};
  s.Observe(kA, kT0, 1 * kMs, 1, 0);
  s.Observe(other_port, kT0, 7 * kMs, 1, 0);
  EXPECT_EQ(s.Score(kA, kT0), 1000u);
  EXPECT_EQ(s.Score(other_port, kT0), 7000u);
}

// A power-of-two-choices balancer as the kernel runs it, fed back from the
// scorer as the agent does: 1,000 connections a second (10 every 10 ms step,
// 1 ms apart); each picks two distinct random backends and takes the lower
// score, ties to the first; each connection's latency is reported through
// Observe 10 ms after it started (one call per backend and step); scores
// and open connections are refreshed every 100 ms.
class P2cSimulation {
 public:
  // Latency (ns) of a connection to backend `i` started at `t`.
  using LatencyFn = std::function<int64_t(size_t i, int64_t t, std::mt19937& rng)>;

  P2cSimulation(std::vector<BackendAddr> backends, LatencyFn latency)
      : backends_(std::move(backends)),
        latency_(std::move(latency)),
        scores_(backends_.size(), 0) {}

  void RunUntil(int64_t end_ns) {
    for (; now_ < end_ns; now_ += kStep) {
      Report();
      if (now_ % kRefresh == 0) Refresh();
      for (int64_t k = 0; k < kPerStep; ++k) Connect(now_ + k * (kStep / kPerStep));
    }
  }

  // Connections that started in [from, to) to each backend.
  std::vector<int> Counts(int64_t from, int64_t to) const {
    std::vector<int> n(backends_.size(), 0);
    for (const auto& [t, i] : picks_)
      if (t >= from && t < to) ++n[i];
    return n;
  }

  // Backend i's share of the connections that started in [from, to).
  double Share(size_t i, int64_t from, int64_t to) const {
    const std::vector<int> n = Counts(from, to);
    int total = 0;
    for (int x : n) total += x;
    return total == 0 ? 0 : static_cast<double>(n[i]) / total;
  }

 private:
  static constexpr int64_t kStep = 10 * kMs, kRefresh = 100 * kMs, kReportDelay = 10 * kMs;
  static constexpr int64_t kPerStep = 10;

  struct Conn {
    int64_t start, latency;
    size_t backend;
  };

  void Connect(int64_t t) {
    std::uniform_int_distribution<size_t> first(0, backends_.size() - 1),
        second(0, backends_.size() - 2);
    const size_t a = first(rng_);
    size_t b = second(rng_);
    if (b >= a) ++b;  // distinct from a, uniform over the others
    const size_t pick = scores_[b] < scores_[a] ? b : a;
    picks_.emplace_back(t, pick);
    conns_.push_back({t, latency_(pick, t, rng_), pick});
  }

  // The samples due by now, one Observe per backend.
  void Report() {
    std::vector<int64_t> sum(backends_.size(), 0);
    std::vector<uint32_t> n(backends_.size(), 0);
    while (reported_ < conns_.size() && conns_[reported_].start + kReportDelay <= now_) {
      const Conn& c = conns_[reported_++];
      sum[c.backend] += c.latency;
      ++n[c.backend];
    }
    for (size_t i = 0; i < backends_.size(); ++i)
      if (n[i] > 0) scorer_.Observe(backends_[i], now_, sum[i] / n[i], n[i], 0);
  }

  // What the agent writes into the score map: open connections now, then scores.
  void Refresh() {
    std::vector<uint32_t> open(backends_.size(), 0);
    while (!conns_.empty() && reported_ > 0 && conns_.front().start + kS < now_) {
      conns_.pop_front();  // long finished and reported
      --reported_;
    }
    for (const Conn& c : conns_)
      if (c.start <= now_ && now_ < c.start + c.latency) ++open[c.backend];
    for (size_t i = 0; i < backends_.size(); ++i) {
      scorer_.SetOutstanding(backends_[i], open[i]);
      scores_[i] = scorer_.Score(backends_[i], now_);
    }
  }

  std::vector<BackendAddr> backends_;
  LatencyFn latency_;
  LatencyScorer scorer_;
  // Fixed, so the test is deterministic. Over seeds 1-40 the slow backend's
  // share stayed <= 1.5% and its recovered share >= 31%, equal backends'
  // shares within 2% of a third: the bounds are not tuned to this seed.
  std::mt19937 rng_{12345};
  std::vector<uint32_t> scores_;  // as the kernel sees them
  std::deque<Conn> conns_;        // in start order
  size_t reported_ = 0;           // conns_[0, reported_) have been observed
  std::vector<std::pair<int64_t, size_t>> picks_;
  int64_t now_ = 0;
};

TEST(LatencyScorerSimulationTest, SlowBackendLosesItsTrafficAndWinsItBackWhenFast) {
  constexpr int64_t kSlowAt = 10 * kS, kFastAt = kSlowAt + 10 * kS;
  P2cSimulation sim({kA, kB, kC}, [](size_t i, int64_t t, std::mt19937&) {
    return i == 2 && t >= kSlowAt && t < kFastAt ? 10 * kMs : 1 * kMs;
  });
  sim.RunUntil(kFastAt + 12 * kS);

  EXPECT_GT(sim.Share(2, kSlowAt - 5 * kS, kSlowAt), 0.25) << "C's fair share before it slows down";
  EXPECT_LT(sim.Share(2, kSlowAt + 2 * kS, kSlowAt + 7 * kS), 0.10);
  EXPECT_GT(sim.Counts(kSlowAt + 2 * kS, kSlowAt + 10 * kS)[2], 0)
      << "C was not probed again while slow";
  EXPECT_GT(sim.Share(2, kFastAt + 7 * kS, kFastAt + 12 * kS), 0.20);
}

TEST(LatencyScorerSimulationTest, EqualBackendsShareEvenly) {
  // The same latency distribution everywhere, jittered so that scores
  // differ from refresh to refresh: the lowest-scored backend wins two of
  // the three pairs until the next refresh, but none may stay ahead.
  P2cSimulation sim({kA, kB, kC}, [](size_t, int64_t, std::mt19937& rng) {
    return std::uniform_int_distribution<int64_t>(800 * kUs, 1200 * kUs)(rng);
  });
  sim.RunUntil(65 * kS);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_NEAR(sim.Share(i, 5 * kS, 65 * kS), 1.0 / 3, 0.03) << "backend " << i;
}

// Below the floor every estimate scores the same: a few microseconds of
// handshake latency say nothing about a backend; above it, scores differ.
TEST(LatencyScorerTest, EstimatesBelowTheFloorScoreAsTheFloor) {
  LatencyScorer s(LatencyScorer::Options{.floor_ns = 100'000});
  const BackendAddr a{1, 80}, b{2, 80}, c{3, 80};
  s.Observe(a, kT0, 20'000, 1, 0);
  s.Observe(b, kT0, 90'000, 1, 0);
  s.Observe(c, kT0, 400'000, 1, 0);
  EXPECT_EQ(s.Score(a, kT0), 100u);
  EXPECT_EQ(s.Score(b, kT0), 100u);
  EXPECT_EQ(s.Score(c, kT0), 400u);
  EXPECT_EQ(*s.EwmaNs(a, kT0), 20'000) << "display shows the estimate itself";
  s.SetOutstanding(a, 2);
  EXPECT_EQ(s.Score(a, kT0), 300u) << "the floor, times (open + 1)";
}

}  // namespace
}  // namespace shunt::services
