#include "counters.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::lib {

const char* CounterName(int index) {
#define SHUNT_COUNTER_NAME(name, str) str,
  static const char* const kNames[] = {SHUNT_COUNTER_LIST(SHUNT_COUNTER_NAME)};
#undef SHUNT_COUNTER_NAME
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == SHUNT_CTR_MAX);
  if (index < 0 || index >= SHUNT_CTR_MAX) return "unknown";
  return kNames[index];
}

namespace {

// Sums every CPU's slot of the first N entries of a per-CPU array.
template <size_t N>
absl::StatusOr<std::array<uint64_t, N>> SumPerCpu(int fd, const char* (*name)(int)) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(ncpu, "counters: count possible CPUs");
  std::vector<uint64_t> per_cpu(ncpu);
  std::array<uint64_t, N> out{};
  for (uint32_t i = 0; i < N; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0)
      return ErrnoStatus(errno, absl::StrCat("counters: read ", name(static_cast<int>(i))));
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

}  // namespace

absl::StatusOr<Counters> ReadCounters(int fd) { return SumPerCpu<SHUNT_CTR_MAX>(fd, CounterName); }

const char* TcpReasonName(int reason) {
#define SHUNT_TCP_REASON_NAME(name, str) str,
  static const char* const kNames[] = {SHUNT_TCP_REASON_LIST(SHUNT_TCP_REASON_NAME)};
#undef SHUNT_TCP_REASON_NAME
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == SHUNT_TCP_REASON_MAX);
  if (reason < 0 || reason >= SHUNT_TCP_REASON_MAX) return "unknown";
  return kNames[reason];
}

absl::StatusOr<TcpReasonCounts> ReadTcpReasons(int fd) {
  return SumPerCpu<SHUNT_TCP_REASON_MAX>(fd, TcpReasonName);
}

}  // namespace shunt::lib
