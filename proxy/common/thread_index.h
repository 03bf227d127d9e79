// A number for the calling thread, 0, 1, 2, ... in the order threads first
// ask: the shard a worker counts into (ProxyStats, RequestMetrics), so that
// counting per request moves no cache line between workers.
#pragma once

#include <atomic>
#include <cstddef>

namespace shunt::proxy {

inline size_t ThisThreadIndex() {
  static std::atomic<size_t> next{0};
  thread_local const size_t index = next.fetch_add(1, std::memory_order_relaxed);
  return index;
}

}  // namespace shunt::proxy
