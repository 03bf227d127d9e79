// The sidecar baseline: two haproxy processes in TCP mode, one per pod, as a
// sidecar mesh would put them (the outbound hop in the client pod, the inbound
// hop in the server pod):
//   client app -> 127.0.0.1:<outbound> (haproxy, client pod; 15001 in round 1)
//              -> <server pod IP>:<inbound> (haproxy, server pod; 15006 in round 1)
//              -> 127.0.0.1:<app port> (server app, server pod)
// Each benchmark round starts its own chain on its own ports.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "test/e2e/harness/sim.h"

namespace shunt::bench {

inline constexpr char kHaproxyBin[] = "/usr/sbin/haproxy";

// Mutual TLS between the two hops (the mTLS baseline): PEM files, the
// certificate files holding the key after the certificate, as haproxy reads them.
struct HaproxyTls {
  std::string ca_file;     // the CA both hops trust
  std::string client_pem;  // the outbound hop's client certificate and key
  std::string server_pem;  // the inbound hop's server certificate and key
};

class HaproxyChain {
 public:
  static constexpr uint16_t kOutboundPort = 15001;  // client pod, 127.0.0.1 (round 1)
  static constexpr uint16_t kInboundPort = 15006;   // server pod, pod IP (round 1)

  // Writes both configs into node.work_dir() (file names carry `tag`, e.g.
  // haproxy-outbound-r2.cfg / .log), starts both haproxies with node.Spawn()
  // and waits until both ports are listening. Errors: DeadlineExceeded (with
  // haproxy's log) when a port does not come up in 5 s; Internal (with the
  // log) when a haproxy exits.
  // With `tls`, the hop between them is TLS 1.3 with client certificates,
  // both ends verifying the chain against the CA. With `http`, both are in
  // HTTP mode (keep-alive both sides, upstream connections reused), as
  // an L7 sidecar mesh runs them; else TCP mode.
  static absl::StatusOr<std::unique_ptr<HaproxyChain>> Start(
      e2e::TestNode& node, const e2e::TestPod& client, const e2e::TestPod& server,
      uint16_t app_port, uint16_t outbound_port, uint16_t inbound_port, const std::string& tag,
      const HaproxyTls* tls = nullptr, bool http = false);
  // Sends SIGTERM to both haproxies and waits (up to 5 s) until both have
  // exited, so the next round's chain does not share the CPUs with them.
  // They stay zombies until the node reaps them in its destructor (so a pid is
  // never signalled after it could have been reused). Idempotent.
  void Stop();
  // Stop().
  ~HaproxyChain();

  pid_t outbound_pid() const { return outbound_pid_; }
  pid_t inbound_pid() const { return inbound_pid_; }
  uint16_t outbound_port() const { return outbound_port_; }
  uint16_t inbound_port() const { return inbound_port_; }

 private:
  HaproxyChain() = default;
  pid_t outbound_pid_ = -1, inbound_pid_ = -1;
  uint16_t outbound_port_ = 0, inbound_port_ = 0;
  bool stopped_ = false;
};

// Writes a file of the bench (a configuration, a certificate and its key).
absl::Status WriteText(const std::string& path, const std::string& text);

}  // namespace shunt::bench
