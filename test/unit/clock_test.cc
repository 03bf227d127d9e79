// Kernel stamps to wall time (agent/lib/clock.h), and the two readers of
// stamps that use it: the denial ring (DecodeDenyEvent) and flow records
// (MonotonicToWall).
#include "agent/lib/clock.h"

#include <cstring>
#include <limits>

#include "agent/policy/deny_log.h"
#include "agent/telemetry/flow_view.h"
#include "gtest/gtest.h"

namespace shunt::lib {
namespace {

constexpr int64_t kMono = 5'000'000'000'000, kReal = 1'700'000'000'000'000'000;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(MonotonicStampToWallTest, ShiftsByTheClocksOffset) {
  EXPECT_EQ(MonotonicStampToWall(kMono - 1'000, kMono, kReal), kReal - 1'000);
  EXPECT_EQ(MonotonicStampToWall(kMono + 7, kMono, kReal), kReal + 7);
  EXPECT_EQ(MonotonicStampToWall(0, kMono, kReal), kReal - kMono);
}

// Found by fuzzing (test/fuzz ring_records): a stamp past 2^63 (a record
// the kernel could not have written) overflowed int64 in
// realtime - (monotonic - stamp), undefined behaviour; it is clamped now.
TEST(MonotonicStampToWallTest, StampsNoKernelWritesAreClampedNotOverflowed) {
  EXPECT_EQ(MonotonicStampToWall(std::numeric_limits<uint64_t>::max(), kMono, kReal), kMax);
  EXPECT_EQ(MonotonicStampToWall(uint64_t{1} << 63, kMono, kReal), kMax);
  FakeClock clock(kMono, kReal);
  EXPECT_EQ(telemetry::MonotonicToWall(uint64_t{0x9107'0000'0000'0000}, clock), kMax);
  EXPECT_EQ(telemetry::MonotonicToWall(0, clock), 0);  // not stamped
}

TEST(DecodeDenyEventTest, DatesTheEventAndRefusesShortRecords) {
  shunt_deny_event e{};
  e.ts_ns = kMono - 2'000;
  e.dport = 80;
  policy::LoggedDenial d;
  ASSERT_TRUE(policy::DecodeDenyEvent(&e, sizeof(e), kReal, kMono, &d));
  EXPECT_EQ(d.wall_time_ns, kReal - 2'000);
  EXPECT_EQ(d.event.dport, 80);
  EXPECT_FALSE(policy::DecodeDenyEvent(&e, sizeof(e) - 1, kReal, kMono, &d));
  e.ts_ns = std::numeric_limits<uint64_t>::max();
  ASSERT_TRUE(policy::DecodeDenyEvent(&e, sizeof(e), kReal, kMono, &d));
  EXPECT_EQ(d.wall_time_ns, kMax);
  EXPECT_FALSE(d.ipv6);
}

TEST(DecodeDenyEventTest, AnIpv6RecordCarriesItsAddresses) {
  shunt_deny_event6 e{};
  e.base.ts_ns = kMono;
  e.base.dport = 80;
  e.saddr6.w[0] = 0xfd;
  e.daddr6.w[3] = 7;
  policy::LoggedDenial d;
  ASSERT_TRUE(policy::DecodeDenyEvent(&e, sizeof(e), kReal, kMono, &d));
  EXPECT_TRUE(d.ipv6);
  EXPECT_EQ(d.saddr6.w[0], 0xfdu);
  EXPECT_EQ(d.daddr6.w[3], 7u);
  EXPECT_EQ(d.event.dport, 80);
  // Between the two sizes: an IPv4 record with something after it.
  ASSERT_TRUE(policy::DecodeDenyEvent(&e, sizeof(e) - 1, kReal, kMono, &d));
  EXPECT_FALSE(d.ipv6);
}

}  // namespace
}  // namespace shunt::lib
