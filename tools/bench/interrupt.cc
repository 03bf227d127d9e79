#include "tools/bench/interrupt.h"

#include <signal.h>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace shunt::bench {

namespace {

std::atomic<int> g_signal{0};
static_assert(std::atomic<int>::is_always_lock_free, "used from a signal handler");

void OnSignal(int sig) {
  g_signal.store(sig, std::memory_order_relaxed);
  signal(sig, SIG_DFL);  // the next one terminates
}

}  // namespace

void InstallInterruptHandler() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;  // blocking socket calls with timeouts still see EINTR
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

bool Interrupted() { return g_signal.load(std::memory_order_relaxed) != 0; }

absl::Status CheckInterrupted() {
  const int sig = g_signal.load(std::memory_order_relaxed);
  if (sig == 0) return absl::OkStatus();
  return absl::CancelledError(absl::StrCat("interrupted by signal ", sig));
}

}  // namespace shunt::bench
