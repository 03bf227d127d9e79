#include "proxy/common/object_pool.h"

#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace shunt::proxy {
namespace {

struct Scratch {
  std::string text;
  int resets = 0;
  void Reset() {
    text.clear();
    ++resets;
  }
  bool KeepInPool() const { return text.capacity() <= 1024; }
};

// A connection that went idle gives its scratch back; the next request
// (on any connection of the thread) gets it again, memory and all.
TEST(ObjectPoolTest, AGivenBackObjectIsTakenAgainResetWithItsMemory) {
  const char* memory = nullptr;
  Scratch* first = nullptr;
  {
    Pooled<Scratch> s = TakePooled<Scratch>();
    s->text.assign(200, 'x');
    memory = s->text.data();
    first = s.get();
  }
  Pooled<Scratch> again = TakePooled<Scratch>();
  EXPECT_EQ(again.get(), first);
  EXPECT_TRUE(again->text.empty());
  EXPECT_EQ(again->text.data(), memory);
  EXPECT_GE(again->resets, 1);
}

TEST(ObjectPoolTest, AnObjectGrownTooBigIsFreedNotKept) {
  Scratch* big = nullptr;
  {
    Pooled<Scratch> s = TakePooled<Scratch>();
    s->text.assign(4096, 'x');
    big = s.get();
  }
  Pooled<Scratch> next = TakePooled<Scratch>();
  // Not the big one (freed): a kept small one or a new object.
  EXPECT_TRUE(next->text.capacity() <= 1024);
  (void)big;
}

TEST(ObjectPoolTest, AThreadKeepsABoundedNumber) {
  std::thread([] {
    std::vector<Pooled<Scratch>> many;
    for (size_t i = 0; i < object_pool::kKeep + 10; ++i) many.push_back(TakePooled<Scratch>());
    many.clear();
    EXPECT_EQ(object_pool::Local<Scratch>().items.size(), object_pool::kKeep);
  }).join();
}

// Given back on a thread whose list is gone (its exit): freed, no crash.
TEST(ObjectPoolTest, AnObjectOutlivingItsThreadsListIsFreed) {
  std::thread([] {
    thread_local Pooled<Scratch> late;  // destroyed after or before the list
    late = TakePooled<Scratch>();
    Pooled<Scratch> kept = TakePooled<Scratch>();
  }).join();
  SUCCEED();
}

}  // namespace
}  // namespace shunt::proxy
