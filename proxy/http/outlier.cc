#include "proxy/http/outlier.h"

#include <algorithm>

namespace shunt::proxy::http {

EndpointHealth::EndpointHealth() : EndpointHealth(Options()) {}
EndpointHealth::EndpointHealth(Options o) : opts_(o) {}

const char* EndpointHealth::StateName(State s) {
  switch (s) {
    case State::kHealthy:
      return "healthy";
    case State::kEjected:
      return "ejected";
    case State::kProbing:
      return "probing";
  }
  return "?";
}

EndpointHealth::State EndpointHealth::state(int64_t now_ns) {
  if (state_ == State::kEjected && now_ns >= until_ns_) state_ = State::kProbing;
  return state_;
}

bool EndpointHealth::Available(int64_t now_ns) { return state(now_ns) != State::kEjected; }

void EndpointHealth::Eject(int64_t now_ns) {
  ++ejections_;
  ++ejections_total_;
  int64_t d = opts_.ejection_ns;
  for (int i = 1; i < ejections_ && d < opts_.max_ejection_ns; ++i) d *= 2;
  until_ns_ = now_ns + std::min(d, opts_.max_ejection_ns);
  state_ = State::kEjected;
  failures_in_a_row_ = 0;
}

void EndpointHealth::Success(int64_t now_ns) {
  failures_in_a_row_ = 0;
  if (state(now_ns) == State::kProbing) {
    state_ = State::kHealthy;
    healthy_since_ns_ = now_ns;
  }
  // A healthy while (one maximal ejection) forgets past ejections.
  if (state_ == State::kHealthy && ejections_ > 0 &&
      now_ns - healthy_since_ns_ >= opts_.max_ejection_ns)
    ejections_ = 0;
}

void EndpointHealth::Failure(int64_t now_ns) {
  switch (state(now_ns)) {
    case State::kEjected:
      return;  // a late answer from before the ejection
    case State::kProbing:
      Eject(now_ns);  // the probe failed
      return;
    case State::kHealthy:
      if (++failures_in_a_row_ >= opts_.consecutive_failures) Eject(now_ns);
      return;
  }
}

}  // namespace shunt::proxy::http
