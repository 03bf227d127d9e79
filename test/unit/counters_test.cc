// CounterName: the names shuntctl prints for the data-path counters.
#include "agent/lib/counters.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace shunt::lib {
namespace {

TEST(CounterNameTest, EveryIndexHasANonEmptyUniqueName) {
  std::set<std::string> seen;
  for (int i = 0; i < SHUNT_CTR_MAX; ++i) {
    const std::string name = CounterName(i);
    EXPECT_FALSE(name.empty()) << "index " << i;
    EXPECT_NE(name, "unknown") << "index " << i;
    EXPECT_TRUE(seen.insert(name).second) << "index " << i << " repeats '" << name << "'";
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(SHUNT_CTR_MAX));
}

TEST(CounterNameTest, NamesFollowTheAbiXList) {
  // The enum and the names come from one X-list; check both ends of it.
  EXPECT_STREQ(CounterName(SHUNT_CTR_SOCK_SHORT_CIRCUITED), "sockets_short_circuited");
  EXPECT_STREQ(CounterName(SHUNT_CTR_MSG_REDIRECTED), "messages_redirected");
  EXPECT_STREQ(CounterName(SHUNT_CTR_SOCK_STATE_FULL), "socket_state_unavailable");
}

TEST(CounterNameTest, NamesAreSnakeCase) {
  // shuntctl and metrics exporters use them as keys.
  for (int i = 0; i < SHUNT_CTR_MAX; ++i) {
    const std::string name = CounterName(i);
    for (char c : name)
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')
          << "index " << i << ": '" << name << "'";
  }
}

TEST(CounterNameTest, OutOfRangeIsUnknown) {
  for (int index : {-1, -1000, static_cast<int>(SHUNT_CTR_MAX), SHUNT_CTR_MAX + 1, 1 << 30})
    EXPECT_STREQ(CounterName(index), "unknown") << "index " << index;
}

}  // namespace
}  // namespace shunt::lib
