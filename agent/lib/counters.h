// Reading the per-CPU data-path counters (include/shunt/abi/counters.h).
#pragma once

#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "shunt/abi/counters.h"
#include "shunt/abi/sockmap.h"

namespace shunt::lib {

using Counters = std::array<uint64_t, SHUNT_CTR_MAX>;

// Name shuntctl prints for a counter index, from the ABI's X-list.
const char* CounterName(int index);

// Sums every CPU's slot of each counter in the map behind `fd`.
absl::StatusOr<Counters> ReadCounters(int fd);

// Flows kept off or moved off the short-circuit, by enum shunt_tcp_reason
// (shunt_tcp_reasons_v1).
using TcpReasonCounts = std::array<uint64_t, SHUNT_TCP_REASON_MAX>;
// The name shuntctl and /metrics use for a reason ("splice", ...).
const char* TcpReasonName(int reason);
absl::StatusOr<TcpReasonCounts> ReadTcpReasons(int fd);

}  // namespace shunt::lib
