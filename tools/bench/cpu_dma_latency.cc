#include "tools/bench/cpu_dma_latency.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "agent/lib/errno_status.h"

namespace shunt::bench {

namespace {
constexpr char kDevice[] = "/dev/cpu_dma_latency";
}  // namespace

absl::StatusOr<std::unique_ptr<CpuDmaLatencyHold>> CpuDmaLatencyHold::Create() {
  lib::UniqueFd fd(open(kDevice, O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "open /dev/cpu_dma_latency");
  const int32_t zero = 0;
  if (write(fd.get(), &zero, sizeof(zero)) != static_cast<ssize_t>(sizeof(zero)))
    return lib::ErrnoStatus(errno, "write 0 to /dev/cpu_dma_latency");
  return std::unique_ptr<CpuDmaLatencyHold>(new CpuDmaLatencyHold(std::move(fd)));
}

int32_t CpuDmaLatencyHold::EffectiveUs() const {
  int32_t v = -1;
  if (pread(fd_.get(), &v, sizeof(v), 0) != static_cast<ssize_t>(sizeof(v))) return -1;
  return v;
}

}  // namespace shunt::bench
