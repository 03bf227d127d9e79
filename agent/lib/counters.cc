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

absl::StatusOr<Counters> ReadCounters(int fd) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return ErrnoStatus(ncpu, "counters: count possible CPUs");
  std::vector<uint64_t> per_cpu(ncpu);
  Counters out{};
  for (uint32_t i = 0; i < SHUNT_CTR_MAX; ++i) {
    if (bpf_map_lookup_elem(fd, &i, per_cpu.data()) != 0)
      return ErrnoStatus(errno, absl::StrCat("counters: read ", CounterName(i)));
    for (uint64_t v : per_cpu) out[i] += v;
  }
  return out;
}

}  // namespace shunt::lib
