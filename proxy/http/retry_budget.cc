#include "proxy/http/retry_budget.h"

#include <algorithm>

namespace shunt::proxy::http {

RetryBudget::RetryBudget() : RetryBudget(Options()) {}
RetryBudget::RetryBudget(Options o)
    : opts_(o), bucket_ns_(std::max<int64_t>(1, o.window_ns / kBuckets)) {}

void RetryBudget::Advance(int64_t now_ns) {
  const int64_t b = now_ns / bucket_ns_;
  if (current_ < 0 || b - current_ >= kBuckets) {
    requests_.fill(0);
    retries_.fill(0);
  } else {
    for (int64_t i = current_ + 1; i <= b; ++i) {
      requests_[static_cast<size_t>(i % kBuckets)] = 0;
      retries_[static_cast<size_t>(i % kBuckets)] = 0;
    }
  }
  if (b > current_) current_ = b;
}

int64_t RetryBudget::Available(int64_t now_ns) {
  Advance(now_ns);
  int64_t requests = 0, retries = 0;
  for (int i = 0; i < kBuckets; ++i) {
    requests += requests_[static_cast<size_t>(i)];
    retries += retries_[static_cast<size_t>(i)];
  }
  const double window_s = static_cast<double>(opts_.window_ns) / 1e9;
  const auto allowed = static_cast<int64_t>(opts_.ratio * static_cast<double>(requests) +
                                            opts_.min_per_second * window_s);
  return std::max<int64_t>(0, allowed - retries);
}

void RetryBudget::Deposit(int64_t now_ns) {
  Advance(now_ns);
  ++requests_[static_cast<size_t>(current_ % kBuckets)];
}

bool RetryBudget::TryWithdraw(int64_t now_ns) {
  if (Available(now_ns) <= 0) return false;
  ++retries_[static_cast<size_t>(current_ % kBuckets)];
  return true;
}

}  // namespace shunt::proxy::http
