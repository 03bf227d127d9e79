// Circuit breaking by outlier ejection (issue 17 item 3), per endpoint: after
// `consecutive_failures` failures in a row (5xx, or a failed connect, as
// the service's retry-on says) the endpoint is ejected for `ejection`; the
// next ejection of the same endpoint lasts twice as long, up to
// `max_ejection`. When an ejection ends the endpoint is probing: it takes
// requests again, and the first result decides — a success restores it
// (and forgets its ejection count after a healthy while), a failure ejects
// it again at once. States and times are what `shuntctl lb explain` shows.
#pragma once

#include <cstdint>
#include <string>

namespace shunt::proxy::http {

class EndpointHealth {
 public:
  struct Options {
    int consecutive_failures = 5;
    int64_t ejection_ns = 30'000'000'000;
    int64_t max_ejection_ns = 300'000'000'000;
  };
  enum class State { kHealthy, kEjected, kProbing };

  EndpointHealth();
  explicit EndpointHealth(Options o);

  // Whether it may take a request now (healthy, or probing); moves an
  // ended ejection to probing.
  bool Available(int64_t now_ns);
  // The result of a request sent to it.
  void Success(int64_t now_ns);
  void Failure(int64_t now_ns);

  State state(int64_t now_ns);
  int64_t ejected_until_ns() const { return until_ns_; }
  int ejections() const { return ejections_; }  // of late (they double the next one)
  uint64_t ejections_total() const { return ejections_total_; }
  static const char* StateName(State s);  // "healthy", "ejected", "probing"

 private:
  void Eject(int64_t now_ns);

  Options opts_;
  State state_ = State::kHealthy;
  int failures_in_a_row_ = 0;
  int ejections_ = 0;  // of late: each doubles the next ejection
  uint64_t ejections_total_ = 0;
  int64_t until_ns_ = 0;
  int64_t healthy_since_ns_ = 0;
};

}  // namespace shunt::proxy::http
