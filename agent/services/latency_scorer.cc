#include "agent/services/latency_scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace shunt::services {
namespace {

// The highest score a measurement can produce (see Score).
constexpr uint32_t kMaxScore = std::numeric_limits<uint32_t>::max() - 1;

// Cost (ns) x (open + 1) as the kernel's score: microseconds, rounded up so
// that any nonzero cost is at least 1, saturating.
uint32_t ToScore(double cost_ns, uint32_t open) {
  const double us = std::ceil(cost_ns / 1000.0);
  const double score = us * (static_cast<double>(open) + 1.0);
  if (!(score < static_cast<double>(kMaxScore))) return kMaxScore;  // also NaN
  return static_cast<uint32_t>(score);
}

}  // namespace

LatencyScorer::LatencyScorer() : LatencyScorer(Options{}) {}

LatencyScorer::LatencyScorer(Options o) : opts_(o) {
  // A non-positive tau would divide by zero; 1 ns means "no memory".
  opts_.decay_ns = std::max<int64_t>(opts_.decay_ns, 1);
  opts_.failure_penalty_ns = std::max<int64_t>(opts_.failure_penalty_ns, 0);
  opts_.initial_ns = std::max<int64_t>(opts_.initial_ns, 0);
  opts_.floor_ns = std::max<int64_t>(opts_.floor_ns, 0);
}

double LatencyScorer::Weight(const State& s, int64_t now_ns) const {
  // A clock read before the stamp (callers' clocks race) counts as no time.
  const double dt = static_cast<double>(std::max<int64_t>(now_ns - s.stamp_ns, 0));
  return std::exp(-dt / static_cast<double>(opts_.decay_ns));
}

double LatencyScorer::DecayedCost(const State& s, int64_t now_ns) const {
  return s.cost_ns * Weight(s, now_ns);
}

void LatencyScorer::Sample(State& s, int64_t now_ns, double x_ns) const {
  if (!s.measured) {
    // The first sample is the estimate: there is no past to weigh it against.
    s.cost_ns = x_ns;
  } else {
    // Start from the decayed cost, what Score has been showing (Finagle's
    // reads commit the decay; ours do not, so the update does). From the
    // undecayed one, a fast probe of a backend idle since it was slow would
    // raise its score back above the others' (1 ms after 10 ms: ~1.9 ms),
    // and winning its share back would take many probes and ~10 s.
    const double w = Weight(s, now_ns);
    const double cost = DecayedCost(s, now_ns);
    if (x_ns > cost) {
      s.cost_ns = x_ns;  // peak: a slow-down shows at once
    } else {
      // The longer since the last sample, the more this one counts.
      s.cost_ns = cost * w + x_ns * (1.0 - w);
    }
  }
  s.measured = true;
  s.stamp_ns = std::max(s.stamp_ns, now_ns);
}

void LatencyScorer::Observe(const BackendAddr& b, int64_t now_ns, int64_t mean_ns, uint32_t samples,
                            uint32_t failures) {
  if (samples == 0 && failures == 0) return;
  State& s = backends_[b];
  if (samples > 0) Sample(s, now_ns, static_cast<double>(std::max<int64_t>(mean_ns, 0)));
  if (failures > 0) Sample(s, now_ns, static_cast<double>(opts_.failure_penalty_ns));
}

void LatencyScorer::SetOutstanding(const BackendAddr& b, uint32_t open) {
  auto it = backends_.find(b);
  if (it == backends_.end()) {
    if (open == 0) return;  // nothing to remember
    it = backends_.emplace(b, State{}).first;
  }
  it->second.outstanding = open;
}

uint32_t LatencyScorer::Score(const BackendAddr& b, int64_t now_ns) const {
  auto it = backends_.find(b);
  if (it == backends_.end() || !it->second.measured) {
    const uint32_t open = it == backends_.end() ? 0 : it->second.outstanding;
    return opts_.initial_ns == 0 ? 0 : ToScore(static_cast<double>(opts_.initial_ns), open);
  }
  const double cost =
      std::max(DecayedCost(it->second, now_ns), static_cast<double>(opts_.floor_ns));
  return std::max<uint32_t>(ToScore(cost, it->second.outstanding), 1);
}

std::optional<int64_t> LatencyScorer::EwmaNs(const BackendAddr& b, int64_t now_ns) const {
  auto it = backends_.find(b);
  if (it == backends_.end() || !it->second.measured) return std::nullopt;
  return std::llround(DecayedCost(it->second, now_ns));
}

uint32_t LatencyScorer::Outstanding(const BackendAddr& b) const {
  auto it = backends_.find(b);
  return it == backends_.end() ? 0 : it->second.outstanding;
}

void LatencyScorer::Retain(const absl::flat_hash_set<BackendAddr>& keep) {
  absl::erase_if(backends_, [&](const auto& kv) { return !keep.contains(kv.first); });
}

}  // namespace shunt::services
