// Work handed from the HTTP server's thread to the agent's loop: the loop
// polls fd() and runs what is pending between reconciles, so handlers read
// controller state without locks, and a client that is slow to send or to
// read never holds the loop (the server thread does all the I/O).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::http {

class LoopQueue {
 public:
  // The eventfd's error, named.
  static absl::StatusOr<std::unique_ptr<LoopQueue>> Create();

  // Readable when work is pending.
  int fd() const { return event_.get(); }
  // Any thread.
  void Post(std::function<void()> work);
  // The loop's thread: runs everything posted so far; returns how many.
  size_t RunPending();

 private:
  explicit LoopQueue(lib::UniqueFd event) : event_(std::move(event)) {}
  lib::UniqueFd event_;
  std::mutex mu_;
  std::deque<std::function<void()>> pending_;
};

}  // namespace shunt::http
