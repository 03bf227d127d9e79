#include "proxy/http/balancer.h"

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"

namespace shunt::proxy::http {

RequestBalancer::RequestBalancer(std::vector<Endpoint> endpoints, Options options)
    : endpoints_(std::move(endpoints)),
      opts_(options),
      scorer_(options.scorer),
      health_(endpoints_.size(), EndpointHealth(options.health)),
      outstanding_(endpoints_.size(), 0) {}

uint32_t RequestBalancer::Score(int index, int64_t now_ns) const {
  return scorer_.Score(endpoints_[static_cast<size_t>(index)].addr, now_ns);
}

std::optional<RequestBalancer::Choice> RequestBalancer::Pick(int64_t now_ns, absl::BitGenRef rng) {
  if (endpoints_.empty()) return std::nullopt;
  Choice c;
  c.at_ns = now_ns;
  available_.clear();
  for (size_t i = 0; i < endpoints_.size(); ++i)
    if (health_[i].Available(now_ns)) available_.push_back(static_cast<int>(i));
  if (available_.empty()) {
    c.panic = true;
    for (size_t i = 0; i < endpoints_.size(); ++i) available_.push_back(static_cast<int>(i));
  }
  const int n = static_cast<int>(available_.size());
  if (n == 1) {
    c.picked = c.candidates[0] = available_[0];
    c.why = "the only endpoint available";
  } else {
    // Two distinct draws; the second is kept only if clearly better.
    const int a = absl::Uniform(rng, 0, n);
    int b = absl::Uniform(rng, 0, n - 1);
    if (b >= a) ++b;
    c.candidates[0] = available_[static_cast<size_t>(a)];
    c.candidates[1] = available_[static_cast<size_t>(b)];
    c.scores[0] = Score(c.candidates[0], now_ns);
    c.scores[1] = Score(c.candidates[1], now_ns);
    if (static_cast<uint64_t>(c.scores[1]) * 5 < static_cast<uint64_t>(c.scores[0]) * 4) {
      c.picked = c.candidates[1];
      c.why = absl::StrCat("lower score: ", c.scores[1], " is over 20% below ", c.scores[0]);
    } else if (c.scores[0] <= c.scores[1]) {
      c.picked = c.candidates[0];
      c.why = absl::StrCat("lower or equal score: ", c.scores[0], " <= ", c.scores[1]);
    } else {
      c.picked = c.candidates[0];
      c.why = absl::StrCat("scores within 20% (", c.scores[0], " vs ", c.scores[1],
                           "): the first draw");
    }
  }
  if (c.panic) c.why += " (every endpoint ejected: all take requests)";
  const auto p = static_cast<size_t>(c.picked);
  scorer_.SetOutstanding(endpoints_[p].addr, ++outstanding_[p]);
  recent_.push_front(c);
  while (recent_.size() > opts_.remember) recent_.pop_back();
  return c;
}

void RequestBalancer::Finished(int index, int64_t now_ns, int64_t latency_ns, bool failure,
                               bool responded) {
  const auto i = static_cast<size_t>(index);
  if (i >= endpoints_.size()) return;
  if (outstanding_[i] > 0) --outstanding_[i];
  scorer_.SetOutstanding(endpoints_[i].addr, outstanding_[i]);
  if (failure && !responded)
    scorer_.Observe(endpoints_[i].addr, now_ns, 0, 0, 1);
  else
    scorer_.Observe(endpoints_[i].addr, now_ns, latency_ns, 1, 0);
  if (failure)
    health_[i].Failure(now_ns);
  else
    health_[i].Success(now_ns);
}

void RequestBalancer::Cancelled(int index) {
  const auto i = static_cast<size_t>(index);
  if (i >= endpoints_.size()) return;
  if (outstanding_[i] > 0) --outstanding_[i];
  scorer_.SetOutstanding(endpoints_[i].addr, outstanding_[i]);
}

}  // namespace shunt::proxy::http
