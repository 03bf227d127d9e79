// The endpoints controller's view of the machine's network namespaces,
// behind an interface so the controller can be tested without entering any.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "agent/netns/link_info.h"
#include "agent/netns/netns_scanner.h"

namespace shunt::netns {

class NamespaceScanner {
 public:
  virtual ~NamespaceScanner() = default;
  virtual std::vector<NetnsHandle> List() = 0;
  virtual absl::StatusOr<std::vector<NetnsProbe>> Probe(
      const std::vector<NetnsHandle>& handles) = 0;
  virtual absl::StatusOr<LinkInfo> Link(int ifindex) = 0;
};

// This machine's: /run/netns and /proc, links by netlink.
class SystemNamespaceScanner : public NamespaceScanner {
 public:
  std::vector<NetnsHandle> List() override { return ListNetns(); }
  absl::StatusOr<std::vector<NetnsProbe>> Probe(const std::vector<NetnsHandle>& handles) override {
    return ProbeNetns(handles);
  }
  absl::StatusOr<LinkInfo> Link(int ifindex) override { return GetLink(ifindex); }
};

}  // namespace shunt::netns
