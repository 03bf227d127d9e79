#include "peer_directory.h"

namespace shunt::telemetry {

std::shared_ptr<const PeerDirectory> PeerDirectory::Build(const std::vector<model::Pod>& pods) {
  auto d = std::make_shared<PeerDirectory>();
  for (const model::Pod& p : pods) {
    if (p.host_network) continue;  // the node's address, not the pod's own
    d->by_ip_[p.ip_be] = Peer{p.namespace_, p.name, p.WorkloadName(), p.service_account};
  }
  return d;
}

const Peer& PeerDirectory::Find(uint32_t ip_be) const {
  static const Peer kUnknown{"", "", "unmeshed", ""};
  auto it = by_ip_.find(ip_be);
  return it == by_ip_.end() ? kUnknown : it->second;
}

}  // namespace shunt::telemetry
