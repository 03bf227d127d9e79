// The sidecar baseline: two haproxy processes in TCP mode, one per pod, as a
// sidecar mesh would put them (the outbound hop in the client pod, the inbound
// hop in the server pod):
//   client app -> 127.0.0.1:15001 (haproxy, client pod)
//              -> <server pod IP>:15006 (haproxy, server pod)
//              -> 127.0.0.1:<app port> (server app, server pod)
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "test/e2e/harness/sim.h"

namespace shunt::bench {

inline constexpr char kHaproxyBin[] = "/usr/sbin/haproxy";

class HaproxyChain {
 public:
  static constexpr uint16_t kOutboundPort = 15001;  // client pod, 127.0.0.1
  static constexpr uint16_t kInboundPort = 15006;   // server pod, pod IP

  // Writes both configs into node.work_dir(), starts both haproxies with
  // node.Spawn() and waits until both ports are listening. Errors:
  // DeadlineExceeded (with haproxy's log) when a port does not come up in 5 s;
  // Internal (with the log) when a haproxy exits.
  static absl::StatusOr<std::unique_ptr<HaproxyChain>> Start(e2e::TestNode& node,
                                                             const e2e::TestPod& client,
                                                             const e2e::TestPod& server,
                                                             uint16_t app_port);
  // Sends SIGTERM to both haproxies. The node reaps them in its destructor
  // (so a pid is never signalled after it could have been reused).
  ~HaproxyChain();

  pid_t outbound_pid() const { return outbound_pid_; }
  pid_t inbound_pid() const { return inbound_pid_; }

 private:
  HaproxyChain() = default;
  pid_t outbound_pid_ = -1, inbound_pid_ = -1;
};

}  // namespace shunt::bench
