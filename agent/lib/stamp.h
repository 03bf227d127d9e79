// Process-wide unique version stamps: a holder of derived state compares
// stamps instead of contents to learn that nothing changed, even across
// different source objects (two objects never share a stamp).
#pragma once

#include <atomic>
#include <cstdint>

namespace shunt::lib {

inline uint64_t NextStamp() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace shunt::lib
