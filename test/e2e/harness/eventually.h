// Waiting on a state, never on a sleep: the one polling loop the tests share.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace shunt::e2e {

// Calls `check` until it returns OK or `timeout_ms` passes; then the last
// error, prefixed with what was awaited. The 5 ms between looks only paces
// the polling; nothing waits on it.
inline absl::Status Eventually(const std::string& what, const std::function<absl::Status()>& check,
                               int timeout_ms = 5000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  absl::Status last;
  for (;;) {
    last = check();
    if (last.ok()) return last;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return absl::DeadlineExceededError(
      absl::StrCat(what, ": not within ", timeout_ms, " ms; last: ", last.message()));
}

}  // namespace shunt::e2e
