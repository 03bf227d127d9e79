// tcx links of the TC programs on the node side of each local pod's veth,
// pinned under links/tc/ as <ifindex>-from-pod and <ifindex>-to-pod so they
// outlive the agent like every other attachment.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "agent/lib/pin_layout.h"

namespace shunt::datapath {

struct TcSyncReport {
  int attached = 0, updated = 0, detached = 0;
  std::vector<std::string> errors;
};

class TcAttacher {
 public:
  TcAttacher(lib::PinLayout layout, int from_pod_fd, int to_pod_fd)
      : layout_(std::move(layout)), from_pod_fd_(from_pod_fd), to_pod_fd_(to_pod_fd) {}

  // Attaches to every interface in `ifindexes` and detaches from the rest.
  // Existing links get this agent's programs the first time (restart or
  // upgrade), later syncs leave them alone.
  TcSyncReport Sync(const std::set<int>& ifindexes);

  std::string Dir() const;

 private:
  lib::PinLayout layout_;
  int from_pod_fd_, to_pod_fd_;
  std::set<std::string> refreshed_;  // pins whose program this agent already set
};

// Whether the kernel creates tcx links (Linux 6.6): creates one on this
// network namespace's loopback with a program that passes every packet on
// (TCX_NEXT), and closes it at once, unpinned, which detaches it. Only a
// link the kernel really created answers true.
bool TcxLinksSupported();

}  // namespace shunt::datapath
