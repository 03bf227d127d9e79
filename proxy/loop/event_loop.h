// One proxy thread's event loop on epoll, each socket registered once.
// Asio's reactor re-arms a descriptor with epoll_ctl(EPOLL_CTL_MOD) on
// every async_wait: one extra system call per message on each leg, 156,000
// of the 680,000 the two proxies made in a shunt-mtls-bench run, where
// HAProxy makes none. Here a message costs epoll_wait, recv and send.
//
// Level-triggered, with an interest set per socket changed only when a
// watcher's wants change (HAProxy's model): reading is always wanted, so a
// message needs no epoll_ctl; writing is wanted only while a send is
// blocked. Level- rather than edge-triggered so that a short read never
// strands bytes (a read may stop short of what the socket holds, and a
// SOCKHASH-redirected socket's wake-ups are the kernel's business, not
// ours) and a watcher that stops early for fairness is simply told again
// on the next round. A watcher with no interest is out of the epoll set,
// so a hung-up socket it does not want to hear about cannot spin the loop.
//
// Everything but Post and Stop is for the loop's own thread.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::proxy {

class EventLoop {
 public:
  // Gets the events of one file descriptor (EPOLLIN, EPOLLOUT, EPOLLRDHUP,
  // EPOLLHUP, EPOLLERR), or 0 for a call asked for with Again().
  class Watcher {
   public:
    virtual void OnEvents(uint32_t events) = 0;

   protected:
    ~Watcher() = default;
  };
  using Clock = std::chrono::steady_clock;
  // When the loop last returned from epoll_wait: what a watcher reads in
  // its events instead of the clock (one clock read per round of events,
  // not several per request; the events did arrive by then).
  Clock::time_point Now() const { return now_; }
  using TimerId = uint64_t;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd (non-blocking) with its interest, EPOLLIN and/or EPOLLOUT
  // (EPOLLRDHUP comes with EPOLLIN; EPOLLHUP and EPOLLERR with either);
  // errors name the fd. The watcher must outlive the registration.
  absl::Status Watch(int fd, Watcher* w, uint32_t interest = EPOLLIN);
  // Changes what fd's watcher is told about; a system call only when it
  // differs from what it was. 0: nothing at all, until asked again.
  void Interest(int fd, uint32_t interest);
  // Before fd is closed: events already fetched for it are dropped, and
  // nothing calls the watcher again.
  void Unwatch(int fd);
  // Calls w->OnEvents(0) after the events of the current batch.
  void Again(int fd);

  // Runs `fn` on this thread after the current batch of events (an object
  // ending itself from inside its own call).
  void Later(std::function<void()> fn);
  // The same for an object the loop must not keep alive: fn(owner) if it
  // still lives then. No allocation once the queue has grown (a
  // std::function holding a weak_ptr would take one per call).
  void Later(std::weak_ptr<void> owner, void (*fn)(void* owner));

  // Runs `fn` once, `after` from now, unless cancelled first.
  TimerId After(std::chrono::milliseconds after, std::function<void()> fn);
  void Cancel(TimerId id);

  // From any thread: runs `fn` on the loop's thread, soon.
  void Post(std::function<void()> fn);
  // Until Stop (from any thread).
  void Run();
  void Stop();
  // Registered descriptors, pending timers (tests, leaks).
  size_t watched() const { return live_; }
  size_t timers() const { return timers_.size(); }

 private:
  EventLoop() = default;
  // Indexed by fd; an event carries (fd, generation), so one fetched
  // before Unwatch finds a newer generation and is dropped.
  struct Slot {
    Watcher* watcher = nullptr;
    uint32_t generation = 0;
    uint32_t interest = 0;  // 0: not in the epoll set
    bool again = false;
  };
  // epoll_ctl for a slot going from `was` to its interest.
  absl::Status Apply(int fd, const Slot& s, uint32_t was);
  void RunTimers();
  // True once Stop was called.
  bool RunPosted();
  int TimeoutMs() const;

  lib::UniqueFd epoll_;
  lib::UniqueFd wake_;  // an eventfd: Post and Stop from other threads
  std::vector<Slot> slots_;
  std::vector<int> again_, again_running_;
  std::vector<std::function<void()>> later_, later_running_;
  struct OwnedLater {
    std::weak_ptr<void> owner;
    void (*fn)(void*);
  };
  std::vector<OwnedLater> owned_later_, owned_later_running_;
  size_t live_ = 0;
  Clock::time_point now_ = Clock::now();
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
  std::map<TimerId, Clock::time_point> timer_deadline_;
  TimerId next_timer_ = 1;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool stop_ = false;                 // under posted_mu_
  std::atomic<bool> pending_{false};  // something posted, or Stop
};

}  // namespace shunt::proxy
