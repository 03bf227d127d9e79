// Scores for latency-aware balancing (SHUNT_LB_P2C_EWMA). The kernel picks
// two distinct random backends of a service and connects to the one with
// the lower score, a u32 the agent writes into shunt_lb_scores_v1 every
// ~100 ms; this class computes those scores from what telemetry measured,
// as Finagle's and Linkerd's peak-EWMA balancers do:
//  - "peak": a sample slower than the current estimate replaces it at once,
//    so a backend that slows down loses its traffic within one refresh;
//  - "EWMA": faster samples pull the estimate toward them with a weight
//    that grows with the time since the last sample (tau = decay_ns), so
//    one lucky sample does not make a slow backend look fast;
//  - decay: read without new samples, the estimate falls toward 0 (by e
//    every tau), so a backend that lost its traffic is probed again after a
//    while (10x slower than the rest: ~tau * ln 10) and either proves itself
//    fast again or jumps back up;
//  - load: the estimate is multiplied by (open connections + 1), so equal
//    latencies still spread connections away from the busiest backend.
// Finagle's reads commit the decay; ours (Score) do not, so that how often
// scores are refreshed cannot change them. Observe commits it instead: a
// sample is weighed against the decayed estimate, the one Score showed.
// Pure and single-threaded: the caller feeds it and writes the map.
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"

namespace shunt::services {

// A backend as the kernel's score map keys it: scores are per backend, not
// per service, because a pod's latency is the same whichever service name
// reached it.
struct BackendAddr {
  uint32_t ip_be = 0;  // network order, as in shunt_backend
  uint16_t port = 0;   // host order
  auto operator<=>(const BackendAddr&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const BackendAddr& b) {
    return H::combine(std::move(h), b.ip_be, b.port);
  }
};

class LatencyScorer {
 public:
  struct Options {
    // tau of the exponential decay: how long the past counts. Shorter reacts
    // (and probes a slow backend) sooner, longer smooths jitter.
    int64_t decay_ns = 2'000'000'000;
    // A failed connection (refused, reset before establishment) counts as a
    // sample this slow, so a failing backend is avoided like a slow one and,
    // like one, probed again once the penalty has decayed.
    int64_t failure_penalty_ns = 1'000'000'000;
    // The cost of a backend never measured. 0 (as for a backend without a
    // map entry in the kernel) tries new backends first, so new pods get
    // traffic at once and are measured.
    int64_t initial_ns = 0;
    // Scores treat any estimate below this as this: differences of a few
    // microseconds (a handshake's connect latency, scheduling noise) say
    // nothing about a backend's health, and would herd connections onto
    // whichever backend is a hair ahead. The agent uses 100 us.
    int64_t floor_ns = 0;
  };

  // Two constructors, not `Options o = {}`: GCC cannot use a nested
  // struct's member initialisers in a default argument of its own class.
  LatencyScorer();
  explicit LatencyScorer(Options o);

  // What was seen of backend `b` since the last call, at `now_ns`
  // (monotonic): `samples` latency samples with mean `mean_ns` (the agent
  // feeds request -> response latency, and handshakes slower than 10 ms) and
  // `failures` failed connections. The samples count as one observation of
  // their mean: the batch is one moment of the backend's life, and the
  // time-based weight already says how much it should move the estimate.
  // Failures count as one observation of failure_penalty_ns (a peak, so one
  // failure is enough to jump the cost up; more at the same moment add
  // nothing). Nothing to report (0 samples, 0 failures) changes nothing.
  void Observe(const BackendAddr& b, int64_t now_ns, int64_t mean_ns, uint32_t samples,
               uint32_t failures);

  // Connections to `b` open now (from live flow records): the load factor,
  // so that a backend already holding many connections is chosen less even
  // when its latency is as good as the others'.
  void SetOutstanding(const BackendAddr& b, uint32_t open);

  // The kernel's score for `b` at `now_ns`: the decayed peak-EWMA cost in
  // microseconds, rounded up, x (outstanding + 1). Lower is better. At
  // least 1 once measured, so that 0 only ever means "never measured" (with
  // initial_ns = 0) and such backends beat every measured one. Saturates at
  // UINT32_MAX - 1 rather than wrapping (a wrapped score would make the
  // slowest backend look the fastest), leaving UINT32_MAX above anything a
  // measurement can reach. Const: see the top of this file.
  uint32_t Score(const BackendAddr& b, int64_t now_ns) const;

  // The decayed peak-EWMA latency (ns) at `now_ns`, for display (`shuntctl
  // services`); nullopt if never measured, which is not the same as fast.
  std::optional<int64_t> EwmaNs(const BackendAddr& b, int64_t now_ns) const;

  // The last SetOutstanding for `b` (0 if none), for display.
  uint32_t Outstanding(const BackendAddr& b) const;

  // Forgets backends not in `keep` (removed from every service), so memory
  // follows the cluster and a pod whose address is reused starts afresh.
  void Retain(const absl::flat_hash_set<BackendAddr>& keep);

  // Backends remembered (measured, or with open connections).
  size_t size() const { return backends_.size(); }

 private:
  struct State {
    double cost_ns = 0;     // the peak-EWMA as of stamp_ns, before decay
    int64_t stamp_ns = 0;   // when cost_ns was last observed
    bool measured = false;  // cost_ns means something
    uint32_t outstanding = 0;
  };

  // Folds one observation of `x_ns` at `now_ns` into `s`.
  void Sample(State& s, int64_t now_ns, double x_ns) const;
  // exp(-(now - stamp) / tau): what is left at `now_ns` of s.cost_ns, and
  // how little a sample at `now_ns` counts against it.
  double Weight(const State& s, int64_t now_ns) const;
  // s.cost_ns decayed to `now_ns`: what Score and EwmaNs show.
  double DecayedCost(const State& s, int64_t now_ns) const;

  Options opts_;
  absl::flat_hash_map<BackendAddr, State> backends_;
};

}  // namespace shunt::services
