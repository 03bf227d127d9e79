// One proxy thread's event loop on epoll, edge-triggered, each socket
// registered once for reading and writing. Asio's reactor re-arms a
// descriptor with epoll_ctl(EPOLL_CTL_MOD) on every async_wait: one extra
// system call per message on each leg, 156,000 of the 680,000 the two
// proxies made in a shunt-mtls-bench run, where HAProxy makes none. Here a
// message costs epoll_wait, recv and send.
//
// Edge-triggered means a watcher reads until EAGAIN, or, to let the other
// connections have their turn, stops early and asks for another call with
// Again(): it runs once more after the current batch of events, without
// waiting for the kernel.
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
  using TimerId = uint64_t;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Registers fd (non-blocking) for its readiness, once; errors name the fd.
  // The watcher must outlive the registration.
  absl::Status Watch(int fd, Watcher* w);
  // Before fd is closed: events already fetched for it are dropped, and
  // nothing calls the watcher again.
  void Unwatch(int fd);
  // Calls w->OnEvents(0) after the events of the current batch.
  void Again(int fd);

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
    bool again = false;
  };
  void RunTimers();
  // True once Stop was called.
  bool RunPosted();
  int TimeoutMs() const;

  lib::UniqueFd epoll_;
  lib::UniqueFd wake_;  // an eventfd: Post and Stop from other threads
  std::vector<Slot> slots_;
  std::vector<int> again_, again_running_;
  size_t live_ = 0;
  std::map<std::pair<Clock::time_point, TimerId>, std::function<void()>> timers_;
  std::map<TimerId, Clock::time_point> timer_deadline_;
  TimerId next_timer_ = 1;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;
  bool stop_ = false;                 // under posted_mu_
  std::atomic<bool> pending_{false};  // something posted, or Stop
};

}  // namespace shunt::proxy
