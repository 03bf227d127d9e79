// Ctrl-C / SIGTERM / SIGHUP during a run: the first one sets a flag that the
// measurement loops and phase boundaries check, so the run unwinds normally
// and the node (namespaces, cgroups, pins, agent, haproxies) is torn down.
// A second signal kills at once (SweepStale() at the next start cleans up).
#pragma once

#include "absl/status/status.h"

namespace shunt::bench {

void InstallInterruptHandler();
bool Interrupted();
// Cancelled("interrupted by signal N") once a signal came, else OK.
absl::Status CheckInterrupted();

}  // namespace shunt::bench
