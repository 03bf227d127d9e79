// ParseCidr: --pod-cidrs as keys of the pod-range LPM trie.
#include "agent/lib/cidr.h"

#include <arpa/inet.h>

#include <cstring>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::lib {
namespace {

using ::testing::HasSubstr;

TEST(ParseCidrTest, Ipv4RangesAreStoredV4Mapped) {
  auto k = ParseCidr("10.244.0.0/16");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->prefixlen, 96u + 16u);
  uint8_t want[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 244, 0, 0};
  EXPECT_EQ(std::memcmp(&k->addr, want, 16), 0);
  EXPECT_EQ(ParseCidr("0.0.0.0/0")->prefixlen, 96u);
  EXPECT_EQ(ParseCidr("10.0.0.7/32")->prefixlen, 128u);
}

TEST(ParseCidrTest, Ipv6RangesAreStoredAsWritten) {
  auto k = ParseCidr("fd00:10:244::/56");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->prefixlen, 56u);
  in6_addr want{};
  inet_pton(AF_INET6, "fd00:10:244::", &want);
  EXPECT_EQ(std::memcmp(&k->addr, &want, 16), 0);
}

TEST(ParseCidrTest, BadRangesNameWhatIsWrong) {
  EXPECT_THAT(ParseCidr("10.244.0.0").status().message(),
              HasSubstr("'10.244.0.0' is not a range (address/prefix length)"));
  EXPECT_THAT(ParseCidr("10.244.0.0/").status().message(), HasSubstr("has no prefix length"));
  EXPECT_THAT(ParseCidr("10.244.0.0/33").status().message(),
              HasSubstr("has a prefix length outside 0..32"));
  EXPECT_THAT(ParseCidr("fd00::/129").status().message(),
              HasSubstr("has a prefix length outside 0..128"));
  EXPECT_THAT(ParseCidr("pods/16").status().message(), HasSubstr("is not an IPv4 or IPv6 range"));
  EXPECT_EQ(ParseCidr("10.244.1.0/16").status().message(),
            "'10.244.1.0/16' has bits set past /16; did you mean 10.244.0.0/16?");
  EXPECT_EQ(ParseCidr("fd00::1/64").status().message(),
            "'fd00::1/64' has bits set past /64; did you mean fd00::/64?");
}

}  // namespace
}  // namespace shunt::lib
