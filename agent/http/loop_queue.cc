#include "loop_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "agent/lib/errno_status.h"

namespace shunt::http {

absl::StatusOr<std::unique_ptr<LoopQueue>> LoopQueue::Create() {
  lib::UniqueFd fd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "http: eventfd");
  return std::unique_ptr<LoopQueue>(new LoopQueue(std::move(fd)));
}

void LoopQueue::Post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(std::move(work));
  }
  const uint64_t one = 1;
  // A full counter (never, at 2^64) or EAGAIN still leaves the fd readable.
  (void)!write(event_.get(), &one, sizeof(one));
}

size_t LoopQueue::RunPending() {
  uint64_t n = 0;
  (void)!read(event_.get(), &n, sizeof(n));
  std::deque<std::function<void()>> work;
  {
    std::lock_guard<std::mutex> lock(mu_);
    work.swap(pending_);
  }
  for (auto& w : work) w();
  return work.size();
}

}  // namespace shunt::http
