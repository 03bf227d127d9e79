// Who an address is, for naming flow ends: every pod in the config (local
// or not) by IPv4 address, with its workload. Built once per config load and
// shared read-only with the flow collector's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "agent/model/pod.h"

namespace shunt::telemetry {

struct Peer {
  std::string namespace_;  // empty: not a pod we know
  std::string pod;
  std::string workload;  // "deployment/web", "sa/default"; "unmeshed" for unknown addresses
  std::string service_account;
  bool known() const { return !pod.empty(); }
};

class PeerDirectory {
 public:
  static std::shared_ptr<const PeerDirectory> Build(const std::vector<model::Pod>& pods);
  // The pod with this address (network order), or an unknown peer.
  const Peer& Find(uint32_t ip_be) const;

 private:
  absl::flat_hash_map<uint32_t, Peer> by_ip_;
};

}  // namespace shunt::telemetry
