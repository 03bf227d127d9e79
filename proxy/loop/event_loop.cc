#include "proxy/loop/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::proxy {
namespace {

uint64_t Tag(int fd, uint32_t generation) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(fd)) << 32) | generation;
}
constexpr uint64_t kWakeTag = ~uint64_t{0};

}  // namespace

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create() {
  std::unique_ptr<EventLoop> loop(new EventLoop());
  loop->epoll_ = lib::UniqueFd(epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) return lib::ErrnoStatus(errno, "event loop: epoll_create1");
  loop->wake_ = lib::UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!loop->wake_.valid()) return lib::ErrnoStatus(errno, "event loop: eventfd");
  epoll_event ev{.events = EPOLLIN, .data = {.u64 = kWakeTag}};
  if (epoll_ctl(loop->epoll_.get(), EPOLL_CTL_ADD, loop->wake_.get(), &ev) != 0)
    return lib::ErrnoStatus(errno, "event loop: epoll_ctl(ADD eventfd)");
  return loop;
}

EventLoop::~EventLoop() = default;

absl::Status EventLoop::Apply(int fd, const Slot& s, uint32_t was) {
  if (s.interest == was) return absl::OkStatus();
  if (s.interest == 0) {
    epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    return absl::OkStatus();
  }
  const int op = was == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  epoll_event ev{.events = s.interest | ((s.interest & EPOLLIN) ? EPOLLRDHUP : 0u),
                 .data = {.u64 = Tag(fd, s.generation)}};
  if (epoll_ctl(epoll_.get(), op, fd, &ev) != 0)
    return lib::ErrnoStatus(
        errno, absl::StrCat("event loop: epoll_ctl(", op == EPOLL_CTL_ADD ? "ADD" : "MOD", " fd ",
                            fd, ")"));
  return absl::OkStatus();
}

absl::Status EventLoop::Watch(int fd, Watcher* w, uint32_t interest) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("event loop: watch fd ", fd));
  if (static_cast<size_t>(fd) >= slots_.size()) slots_.resize(static_cast<size_t>(fd) + 1);
  Slot& s = slots_[static_cast<size_t>(fd)];
  if (s.watcher)
    return absl::AlreadyExistsError(absl::StrCat("event loop: fd ", fd, " is already watched"));
  s.interest = interest & (EPOLLIN | EPOLLOUT);
  if (absl::Status st = Apply(fd, s, 0); !st.ok()) {
    s.interest = 0;
    return st;
  }
  s.watcher = w;
  s.again = false;
  ++live_;
  return absl::OkStatus();
}

void EventLoop::Interest(int fd, uint32_t interest) {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
  Slot& s = slots_[static_cast<size_t>(fd)];
  if (!s.watcher) return;
  const uint32_t was = s.interest;
  s.interest = interest & (EPOLLIN | EPOLLOUT);
  // Only fails for a descriptor closed while watched: a bug the watcher's
  // own read or write reports.
  (void)Apply(fd, s, was);
}

void EventLoop::Unwatch(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
  Slot& s = slots_[static_cast<size_t>(fd)];
  if (!s.watcher) return;
  if (s.interest != 0) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  s.watcher = nullptr;
  s.interest = 0;
  s.again = false;
  ++s.generation;
  --live_;
}

void EventLoop::Again(int fd) {
  if (fd < 0 || static_cast<size_t>(fd) >= slots_.size()) return;
  Slot& s = slots_[static_cast<size_t>(fd)];
  if (!s.watcher || s.again) return;
  s.again = true;
  again_.push_back(fd);
}

void EventLoop::Later(std::function<void()> fn) { later_.push_back(std::move(fn)); }

void EventLoop::Later(std::weak_ptr<void> owner, void (*fn)(void*)) {
  owned_later_.push_back({std::move(owner), fn});
}

EventLoop::TimerId EventLoop::After(std::chrono::milliseconds after, std::function<void()> fn) {
  const TimerId id = next_timer_++;
  const Clock::time_point at = Clock::now() + after;
  timers_.emplace(std::make_pair(at, id), std::move(fn));
  timer_deadline_.emplace(id, at);
  return id;
}

void EventLoop::Cancel(TimerId id) {
  auto it = timer_deadline_.find(id);
  if (it == timer_deadline_.end()) return;
  timers_.erase({it->second, id});
  timer_deadline_.erase(it);
}

void EventLoop::Post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> l(posted_mu_);
    posted_.push_back(std::move(fn));
  }
  pending_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void EventLoop::Stop() {
  {
    std::lock_guard<std::mutex> l(posted_mu_);
    stop_ = true;
  }
  pending_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

int EventLoop::TimeoutMs() const {
  if (!again_.empty() || !later_.empty() || !owned_later_.empty()) return 0;
  if (timers_.empty()) return -1;
  const auto left = timers_.begin()->first.first - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Rounded up: waking a little late is fine, early means a second wait.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

void EventLoop::RunTimers() {
  if (timers_.empty()) return;
  const Clock::time_point now = Clock::now();
  now_ = now;  // what the timers' callbacks read (the round's events took time)
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    timer_deadline_.erase(node.key().second);
    node.mapped()();  // may add or cancel timers
  }
}

bool EventLoop::RunPosted() {
  if (!pending_.exchange(false, std::memory_order_acquire)) return false;
  std::vector<std::function<void()>> run;
  bool stop;
  {
    std::lock_guard<std::mutex> l(posted_mu_);
    run.swap(posted_);
    stop = stop_;
  }
  for (auto& fn : run) fn();
  return stop;
}

void EventLoop::Run() {
  constexpr int kBatch = 64;
  epoll_event events[kBatch];
  for (;;) {
    const int n = epoll_wait(epoll_.get(), events, kBatch, TimeoutMs());
    if (n < 0 && errno != EINTR) return;  // only EBADF/EINVAL: a broken loop
    now_ = Clock::now();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag) {
        uint64_t count;
        (void)!read(wake_.get(), &count, sizeof(count));
        continue;
      }
      const auto fd = static_cast<size_t>(tag >> 32);
      if (fd >= slots_.size()) continue;
      Slot& s = slots_[fd];
      // Unwatched (and maybe reused) since epoll_wait returned, or no
      // longer interested: not for it.
      if (!s.watcher || s.generation != static_cast<uint32_t>(tag) || s.interest == 0) continue;
      // What it asked for now, which may be less than when fetched.
      const uint32_t wanted =
          s.interest | EPOLLHUP | EPOLLERR | ((s.interest & EPOLLIN) ? uint32_t{EPOLLRDHUP} : 0u);
      if (const uint32_t ev = events[i].events & wanted) s.watcher->OnEvents(ev);
    }
    // Watchers that stopped early, in the order they asked; those asking
    // again now run in the next round, after new events.
    again_running_.swap(again_);
    for (int fd : again_running_) {
      Slot& s = slots_[static_cast<size_t>(fd)];
      if (!s.watcher || !s.again) continue;
      s.again = false;
      s.watcher->OnEvents(0);
    }
    again_running_.clear();
    later_running_.swap(later_);
    for (auto& fn : later_running_) fn();
    later_running_.clear();
    owned_later_running_.swap(owned_later_);
    for (auto& l : owned_later_running_)
      if (auto owner = l.owner.lock()) l.fn(owner.get());
    owned_later_running_.clear();
    RunTimers();
    if (RunPosted()) return;
  }
}

}  // namespace shunt::proxy
