#include "proxy/loop/event_loop.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "agent/lib/unique_fd.h"
#include "gtest/gtest.h"

namespace shunt::proxy {
namespace {

using std::chrono::milliseconds;

struct Pair {
  lib::UniqueFd a, b;
};
Pair SocketPair() {
  int fds[2];
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  return {lib::UniqueFd(fds[0]), lib::UniqueFd(fds[1])};
}

// A watcher that calls a function.
class FnWatcher : public EventLoop::Watcher {
 public:
  explicit FnWatcher(std::function<void(uint32_t)> fn) : fn_(std::move(fn)) {}
  void OnEvents(uint32_t events) override { fn_(events); }

 private:
  std::function<void(uint32_t)> fn_;
};

std::unique_ptr<EventLoop> NewLoop() {
  auto loop = EventLoop::Create();
  EXPECT_TRUE(loop.ok()) << loop.status();
  return *std::move(loop);
}

TEST(EventLoopTest, ReadinessComesOnceRegisteredWithoutReArming) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  std::string got;
  int readable_calls = 0;
  FnWatcher w([&](uint32_t events) {
    if (!(events & EPOLLIN)) return;
    ++readable_calls;
    char buf[64];
    ssize_t n;
    while ((n = read(p.a.get(), buf, sizeof(buf))) > 0) got.append(buf, n);
    EXPECT_EQ(errno, EAGAIN);
    // Registered once: the next message comes as a new event with nothing
    // re-armed.
    if (got == "one") {
      ASSERT_EQ(write(p.b.get(), "two", 3), 3);
    }
    if (got == "onetwo") loop->Stop();
  });
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  ASSERT_EQ(write(p.b.get(), "one", 3), 3);
  loop->Run();
  EXPECT_EQ(got, "onetwo");
  EXPECT_EQ(readable_calls, 2);
  loop->Unwatch(p.a.get());
  EXPECT_EQ(loop->watched(), 0u);
}

TEST(EventLoopTest, AShortReadLeavesNothingStranded) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  ASSERT_EQ(write(p.b.get(), "abcdef", 6), 6);
  std::string got;
  int calls = 0;
  FnWatcher w([&](uint32_t events) {
    EXPECT_NE(events & EPOLLIN, 0u);
    ++calls;
    char buf[2];
    // Less than the socket holds, and no Again: level-triggered, the rest
    // is reported on the next round.
    const ssize_t n = read(p.a.get(), buf, sizeof(buf));
    ASSERT_EQ(n, 2);
    got.append(buf, 2);
    if (got.size() == 6) loop->Stop();
  });
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  loop->Run();
  EXPECT_EQ(got, "abcdef");
  EXPECT_EQ(calls, 3);
}

TEST(EventLoopTest, WritingIsReportedOnlyWhileAsked) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  std::vector<uint32_t> calls;
  FnWatcher w([&](uint32_t events) {
    calls.push_back(events);
    loop->Interest(p.a.get(), EPOLLIN);  // written what was blocked
  });
  // Writable from the start, but not asked: no call.
  ASSERT_TRUE(loop->Watch(p.a.get(), &w, EPOLLIN).ok());
  loop->After(milliseconds(20), [&] { loop->Interest(p.a.get(), EPOLLIN | EPOLLOUT); });
  loop->After(milliseconds(60), [&] { loop->Stop(); });
  loop->Run();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], uint32_t{EPOLLOUT});
}

TEST(EventLoopTest, NoInterestSilencesAHungUpSocketUntilAskedAgain) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  ASSERT_EQ(write(p.b.get(), "x", 1), 1);
  p.b.Reset();  // hung up: reported on every round to whoever listens
  int calls = 0;
  FnWatcher w([&](uint32_t events) {
    ++calls;
    EXPECT_NE(events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP), 0u);
    loop->Interest(p.a.get(), 0);  // e.g. a leg whose stream has no room
  });
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  loop->After(milliseconds(30), [&] {
    EXPECT_EQ(calls, 1);
    loop->Interest(p.a.get(), EPOLLIN);
  });
  loop->After(milliseconds(60), [&] { loop->Stop(); });
  loop->Run();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(loop->watched(), 1u);
  loop->Unwatch(p.a.get());
  EXPECT_EQ(loop->watched(), 0u);
}

TEST(EventLoopTest, AgainCallsAWatcherThatStoppedEarlyWithoutAKernelEvent) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  ASSERT_EQ(write(p.b.get(), "abcdef", 6), 6);
  std::string got;
  std::vector<uint32_t> calls;
  FnWatcher w([&](uint32_t events) {
    calls.push_back(events);
    // Told nothing more by the kernel: only Again calls it from now on.
    loop->Interest(p.a.get(), 0);
    char c;
    // One byte per call, as a watcher that gives others their turn.
    if (read(p.a.get(), &c, 1) == 1) {
      got += c;
      loop->Again(p.a.get());
      loop->Again(p.a.get());  // asking twice is one call
      return;
    }
    loop->Stop();
  });
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  loop->Run();
  EXPECT_EQ(got, "abcdef");
  ASSERT_EQ(calls.size(), 7u);
  EXPECT_NE(calls[0] & EPOLLIN, 0u);
  for (size_t i = 1; i < calls.size(); ++i) EXPECT_EQ(calls[i], 0u) << i;
}

TEST(EventLoopTest, LaterRunsAfterTheBatchThatAskedForIt) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  std::vector<std::string> order;
  FnWatcher w([&](uint32_t) {
    char c;
    if (read(p.a.get(), &c, 1) != 1) return;
    order.push_back("event");
    loop->Later([&] {
      order.push_back("later");
      loop->Stop();
    });
    order.push_back("event done");
  });
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  ASSERT_EQ(write(p.b.get(), "x", 1), 1);
  loop->Run();
  EXPECT_EQ(order, (std::vector<std::string>{"event", "event done", "later"}));
}

TEST(EventLoopTest, TimersRunInDeadlineOrderAndCancelledOnesNever) {
  auto loop = NewLoop();
  std::vector<std::string> ran;
  loop->After(milliseconds(30), [&] {
    ran.push_back("30ms");
    loop->Stop();
  });
  loop->After(milliseconds(10), [&] { ran.push_back("10ms"); });
  const auto cancelled = loop->After(milliseconds(5), [&] { ran.push_back("5ms"); });
  loop->Cancel(cancelled);
  loop->Cancel(cancelled);  // twice: nothing
  EXPECT_EQ(loop->timers(), 2u);
  const auto start = EventLoop::Clock::now();
  loop->Run();
  EXPECT_EQ(ran, (std::vector<std::string>{"10ms", "30ms"}));
  EXPECT_GE(EventLoop::Clock::now() - start, milliseconds(30));
  EXPECT_EQ(loop->timers(), 0u);
}

TEST(EventLoopTest, PostFromAnotherThreadWakesALoopWithNothingToDo) {
  auto loop = NewLoop();
  std::atomic<bool> ran{false};
  std::thread t([&] { loop->Run(); });
  loop->Post([&] { ran = true; });
  loop->Stop();
  t.join();
  EXPECT_TRUE(ran);
}

TEST(EventLoopTest, AnEventFetchedBeforeUnwatchNeverReachesTheWatcher) {
  auto loop = NewLoop();
  Pair p1 = SocketPair(), p2 = SocketPair();
  int first = 0, second = 0;
  // Both become readable in the same batch; whichever runs first unwatches
  // and closes the other (as a tunnel's failure closes its pod legs).
  FnWatcher w1([&](uint32_t) {
    ++first;
    if (p2.a.valid()) {
      loop->Unwatch(p2.a.get());
      p2.a.Reset();
    }
    loop->Stop();
  });
  FnWatcher w2([&](uint32_t) {
    ++second;
    if (p1.a.valid()) {
      loop->Unwatch(p1.a.get());
      p1.a.Reset();
    }
    loop->Stop();
  });
  ASSERT_TRUE(loop->Watch(p1.a.get(), &w1).ok());
  ASSERT_TRUE(loop->Watch(p2.a.get(), &w2).ok());
  ASSERT_EQ(write(p1.b.get(), "x", 1), 1);
  ASSERT_EQ(write(p2.b.get(), "y", 1), 1);
  loop->Run();
  EXPECT_EQ(first + second, 1);
  EXPECT_EQ(loop->watched(), 1u);
}

TEST(EventLoopTest, BadRegistrationsAreNamed) {
  auto loop = NewLoop();
  Pair p = SocketPair();
  FnWatcher w([](uint32_t) {});
  EXPECT_EQ(loop->Watch(-1, &w).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(loop->Watch(p.a.get(), &w).ok());
  absl::Status twice = loop->Watch(p.a.get(), &w);
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(twice.message().find("is already watched"), std::string::npos) << twice;
  lib::UniqueFd not_pollable(open("/dev/null", O_RDONLY | O_CLOEXEC));
  absl::Status regular = loop->Watch(not_pollable.get(), &w);
  EXPECT_FALSE(regular.ok());
  EXPECT_NE(regular.message().find("epoll_ctl(ADD fd"), std::string::npos) << regular;
}

}  // namespace
}  // namespace shunt::proxy
