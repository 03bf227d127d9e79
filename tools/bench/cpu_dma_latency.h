// Holds the CPU wake-up latency target at 0 µs through /dev/cpu_dma_latency.
// Idle vCPUs on the VMs we measure on take ~50 µs to wake, which would swamp
// a 10 µs round trip (DESIGN.md, "Traps measured on this kernel"). The kernel
// keeps the request while the file stays open, so the hold lasts exactly as
// long as this object.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::bench {

class CpuDmaLatencyHold {
 public:
  // Errors: the open/write errno (EACCES when not root, ENOENT when the
  // kernel has no PM QoS device).
  static absl::StatusOr<std::unique_ptr<CpuDmaLatencyHold>> Create();

  // The system-wide target the kernel now applies, read back from the device
  // (0 once our request is in force), or -1 if it cannot be read.
  int32_t EffectiveUs() const;

 private:
  explicit CpuDmaLatencyHold(lib::UniqueFd fd) : fd_(std::move(fd)) {}
  lib::UniqueFd fd_;
};

}  // namespace shunt::bench
