// A policy-map entry as the compiler sees it, in host order.
#pragma once

#include <compare>
#include <cstdint>
#include <utility>

namespace shunt::policy {

inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;

struct EntryKey {
  uint32_t src = 0, dst = 0;
  uint16_t port = 0;  // host order; 0 = any port
  uint8_t proto = kTcp;
  auto operator<=>(const EntryKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const EntryKey& k) {
    return H::combine(std::move(h), k.src, k.dst, k.port, k.proto);
  }
};

struct Grant {
  uint8_t verdict = 0;  // SHUNT_VERDICT_*
  uint32_t rule_id = 0;
  bool operator==(const Grant&) const = default;
};

}  // namespace shunt::policy
