// Latency-aware balancing per request (issue 17 item 3): power of two
// choices over the peak-EWMA of response latency, with the requests in
// flight counted (Linkerd's balancer). The scorer is the one the agent
// uses for the kernel's p2c-ewma over connections (agent/services/
// latency_scorer.h), and the choices are told in the same words as
// `shuntctl lb explain`'s: "lower score: A is over 20% below B", "lower or
// equal score: A <= B", "scores within 20% (A vs B): the first draw".
// Ejected endpoints (EndpointHealth) are left out; when all are ejected,
// all take requests again ("panic", as Envoy calls it): a service with
// every endpoint failing answers with their errors, not with none.
// One balancer per service and proxy thread: no locking.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "agent/services/latency_scorer.h"
#include "proxy/http/outlier.h"

namespace shunt::proxy::http {

class RequestBalancer {
 public:
  struct Endpoint {
    services::BackendAddr addr;
    std::string name;  // "ns/pod", for explain
  };
  struct Choice {
    int64_t at_ns = 0;
    int picked = -1;
    int candidates[2] = {-1, -1};  // one when only one was available
    uint32_t scores[2] = {0, 0};
    bool panic = false;
    std::string why;
  };
  struct Options {
    services::LatencyScorer::Options scorer;
    EndpointHealth::Options health;
    size_t remember = 32;  // recent choices kept for explain
  };

  RequestBalancer(std::vector<Endpoint> endpoints, Options options);

  // An endpoint for the next request; nullopt without endpoints. Counts it
  // as outstanding until Finished.
  std::optional<Choice> Pick(int64_t now_ns, absl::BitGenRef rng);
  // The request sent to `index` ended: its latency (head sent to response
  // head, or to the failure) and whether it failed as retry-on counts it.
  // A failure with a response (a 5xx) is a latency sample like any answer
  // and counts towards ejection; one without (refused, reset, timed out)
  // is also a slow sample, so the endpoint is avoided as a slow one is.
  // (Linkerd's split: latency for the balancer, failure accrual apart.)
  void Finished(int index, int64_t now_ns, int64_t latency_ns, bool failure,
                bool responded = false);
  // The request sent to `index` was given up by its client: no longer
  // outstanding, and no sample.
  void Cancelled(int index);

  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  EndpointHealth& health(int index) { return health_[static_cast<size_t>(index)]; }
  uint32_t outstanding(int index) const { return outstanding_[static_cast<size_t>(index)]; }
  uint32_t Score(int index, int64_t now_ns) const;
  const std::deque<Choice>& recent() const { return recent_; }

 private:
  std::vector<Endpoint> endpoints_;
  Options opts_;
  services::LatencyScorer scorer_;
  std::vector<EndpointHealth> health_;
  std::vector<uint32_t> outstanding_;
  std::deque<Choice> recent_;
  std::vector<int> available_;  // scratch
};

}  // namespace shunt::proxy::http
