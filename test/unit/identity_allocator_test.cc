// IdentityAllocator: node-local numbers for (namespace, serviceaccount).
#include "agent/endpoints/identity_allocator.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace shunt::endpoints {
namespace {

using Key = IdentityAllocator::Key;

TEST(IdentityAllocatorTest, NumbersStartAboveTheReservedRange) {
  EXPECT_LT(kIdentityUnknown, kFirstIdentity);
  EXPECT_LT(kIdentityHost, kFirstIdentity);
  EXPECT_LT(kIdentityWorld, kFirstIdentity);
  IdentityAllocator ids;
  EXPECT_EQ(ids.Get({"demo", "client"}), 256u);
  EXPECT_EQ(ids.Get({"demo", "server"}), 257u);
  EXPECT_EQ(ids.Get({"other", "client"}), 258u);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(IdentityAllocatorTest, GetIsStableForAKey) {
  IdentityAllocator ids;
  const uint32_t a = ids.Get({"demo", "a"});
  ids.Get({"demo", "b"});
  EXPECT_EQ(ids.Get({"demo", "a"}), a);
  EXPECT_EQ(ids.size(), 2u);
}

TEST(IdentityAllocatorTest, NamespaceAndServiceAccountBothMatter) {
  IdentityAllocator ids;
  const uint32_t a = ids.Get({"x", "y"});
  EXPECT_NE(ids.Get({"y", "x"}), a);
  EXPECT_NE(ids.Get({"x", "x"}), a);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(IdentityAllocatorTest, RetainFreesNumbersAndTheLowestIsReused) {
  IdentityAllocator ids;
  ids.Get({"n", "a"});  // 256
  ids.Get({"n", "b"});  // 257
  ids.Get({"n", "c"});  // 258
  ids.Get({"n", "d"});  // 259
  ids.Retain({{"n", "a"}, {"n", "d"}});
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids.all().count({"n", "b"}), 0u);
  EXPECT_EQ(ids.Get({"n", "e"}), 257u);
  EXPECT_EQ(ids.Get({"n", "f"}), 258u);
  EXPECT_EQ(ids.Get({"n", "g"}), 260u);
  // Kept pairs keep their numbers.
  EXPECT_EQ(ids.Get({"n", "a"}), 256u);
  EXPECT_EQ(ids.Get({"n", "d"}), 259u);
}

TEST(IdentityAllocatorTest, RetainNothingEmptiesIt) {
  IdentityAllocator ids;
  ids.Get({"n", "a"});
  ids.Get({"n", "b"});
  ids.Retain({});
  EXPECT_EQ(ids.size(), 0u);
  EXPECT_EQ(ids.Get({"n", "b"}), 256u);
}

TEST(IdentityAllocatorTest, RetainIgnoresUnknownKeys) {
  IdentityAllocator ids;
  ids.Get({"n", "a"});
  ids.Retain({{"n", "a"}, {"n", "never-seen"}});
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.all().count({"n", "never-seen"}), 0u);
}

TEST(IdentityAllocatorTest, SeedAdoptsPinnedNumbersAndGetFillsGaps) {
  IdentityAllocator ids;
  ids.Seed({"n", "a"}, 300);
  ids.Seed({"n", "b"}, 257);
  EXPECT_EQ(ids.Get({"n", "a"}), 300u);
  EXPECT_EQ(ids.Get({"n", "b"}), 257u);
  EXPECT_EQ(ids.Get({"n", "c"}), 256u);
  EXPECT_EQ(ids.Get({"n", "d"}), 258u);
  EXPECT_EQ(ids.size(), 4u);
}

TEST(IdentityAllocatorTest, SeedIsIgnoredForTakenNumbersKeysAndReservedNumbers) {
  IdentityAllocator ids;
  ids.Seed({"n", "a"}, 400);
  ids.Seed({"n", "b"}, 400);            // number taken
  ids.Seed({"n", "a"}, 401);            // key taken
  ids.Seed({"n", "c"}, kIdentityHost);  // reserved
  ids.Seed({"n", "d"}, kFirstIdentity - 1);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.Get({"n", "a"}), 400u);
  EXPECT_EQ(ids.Get({"n", "b"}), 256u);
  EXPECT_EQ(ids.Get({"n", "c"}), 257u);
  EXPECT_EQ(ids.Get({"n", "d"}), 258u);
}

TEST(IdentityAllocatorTest, SeedAfterGetCannotStealANumber) {
  IdentityAllocator ids;
  EXPECT_EQ(ids.Get({"n", "a"}), 256u);
  ids.Seed({"n", "b"}, 256);
  EXPECT_EQ(ids.all().count({"n", "b"}), 0u);
  EXPECT_EQ(ids.Get({"n", "b"}), 257u);
}

TEST(IdentityAllocatorTest, NumbersAreUniqueAcrossChurn) {
  IdentityAllocator ids;
  std::set<Key> live;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 10; ++i) {
      Key k{"ns" + std::to_string((round + i) % 7), "sa" + std::to_string(i)};
      ids.Get(k);
      live.insert(k);
    }
    // Drop every other live key.
    std::set<Key> keep;
    bool take = round % 2 == 0;
    for (const Key& k : live) {
      if (take) keep.insert(k);
      take = !take;
    }
    ids.Retain(keep);
    live = keep;
    std::set<uint32_t> numbers;
    for (const auto& [k, id] : ids.all()) {
      EXPECT_GE(id, kFirstIdentity);
      EXPECT_TRUE(numbers.insert(id).second) << "round " << round << ": " << id << " twice";
    }
    ASSERT_EQ(ids.size(), live.size());
    // Dense: with nothing seeded, the numbers in use never leave a gap below
    // the next allocation.
    IdentityAllocator::Key probe{"probe", std::to_string(round)};
    const uint32_t next = ids.Get(probe);
    EXPECT_EQ(numbers.count(next), 0u);
    for (uint32_t n = kFirstIdentity; n < next; ++n)
      EXPECT_EQ(numbers.count(n), 1u) << "round " << round << ": gap at " << n;
    ids.Retain(live);
  }
}

}  // namespace
}  // namespace shunt::endpoints
