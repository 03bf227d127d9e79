// How many retries a route may make (issue 17 item 3), as Linkerd's and
// Finagle's retry budgets: a share of the live traffic plus a small floor,
// over a sliding window, so that retries cannot multiply an outage. With a
// 20% budget, an upstream failing every request sees at most 1.2x the
// requests its clients send (plus the floor), never 1 + retries x.
// Time is passed in (steady clock, ns): pure and deterministic to test.
// One budget per route and proxy thread: no locking.
#pragma once

#include <array>
#include <cstdint>

namespace shunt::proxy::http {

class RetryBudget {
 public:
  struct Options {
    double ratio = 0.2;                  // retries per original request
    double min_per_second = 10;          // retries always allowed, per second
    int64_t window_ns = 10'000'000'000;  // the traffic that counts
  };
  RetryBudget();
  explicit RetryBudget(Options o);

  // An original request (not a retry) was sent.
  void Deposit(int64_t now_ns);
  // True, and counted, if a retry may be sent now.
  bool TryWithdraw(int64_t now_ns);
  // What is left now (for metrics and tests).
  int64_t Available(int64_t now_ns);

 private:
  static constexpr int kBuckets = 10;
  void Advance(int64_t now_ns);

  Options opts_;
  int64_t bucket_ns_;
  int64_t current_ = -1;  // index of the bucket `now` falls in
  std::array<int64_t, kBuckets> requests_{}, retries_{};
};

}  // namespace shunt::proxy::http
