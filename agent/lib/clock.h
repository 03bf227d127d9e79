// Time, injected: controllers and telemetry read it through Clock so that
// unit tests drive it instead of waiting on (or skipping because of) the
// machine's clocks.
#pragma once

#include <time.h>

#include <cstdint>
#include <limits>

namespace shunt::lib {

class Clock {
 public:
  virtual ~Clock() = default;
  // CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns(): what the kernel's
  // flow records are stamped with.
  virtual int64_t MonotonicNs() const = 0;
  // CLOCK_REALTIME, for what users read (timestamps, windows of metrics).
  virtual int64_t RealtimeNs() const = 0;
  int64_t MonotonicMs() const { return MonotonicNs() / 1'000'000; }
};

// A CLOCK_MONOTONIC stamp (bpf_ktime_get_ns) as CLOCK_REALTIME, by the two
// clocks' readings now: realtime_now - (monotonic_now - stamp). Clamped to
// int64: a stamp the kernel could not have written (records come from maps
// and rings anyone with the pins can write) must not overflow.
inline int64_t MonotonicStampToWall(uint64_t stamp_ns, int64_t monotonic_now_ns,
                                    int64_t realtime_now_ns) {
  const __int128 wall = static_cast<__int128>(realtime_now_ns) - monotonic_now_ns + stamp_ns;
  if (wall > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  if (wall < std::numeric_limits<int64_t>::min()) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(wall);
}

// The machine's clocks.
class RealClock : public Clock {
 public:
  int64_t MonotonicNs() const override { return Read(CLOCK_MONOTONIC); }
  int64_t RealtimeNs() const override { return Read(CLOCK_REALTIME); }
  // One shared instance: it has no state.
  static const RealClock& Get() {
    static const RealClock clock;
    return clock;
  }

 private:
  static int64_t Read(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

// A clock that moves only when told to (tests).
class FakeClock : public Clock {
 public:
  FakeClock(int64_t monotonic_ns, int64_t realtime_ns)
      : monotonic_ns_(monotonic_ns), realtime_ns_(realtime_ns) {}
  int64_t MonotonicNs() const override { return monotonic_ns_; }
  int64_t RealtimeNs() const override { return realtime_ns_; }
  void Advance(int64_t ns) {
    monotonic_ns_ += ns;
    realtime_ns_ += ns;
  }

 private:
  int64_t monotonic_ns_;
  int64_t realtime_ns_;
};

}  // namespace shunt::lib
