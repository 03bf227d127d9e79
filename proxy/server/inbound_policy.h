// The receiving proxy's judgement of one CONNECT: is the destination a
// pod of this node, is the caller's certificate the identity of the pod it
// says it comes from, and does SMI policy grant that identity the pod's
// port. Read from the agent's pinned maps (ipcache, policy, mode), so the
// proxy gives exactly the kernel's verdict and follows every change the
// agent makes, without a copy of its own.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "proxy/server/runtime.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

struct InboundVerdict {
  bool allowed = false;
  // Set when refused ("not-a-local-pod", "no-source", "unknown-source",
  // "identity-mismatch", "policy-denied", "l7-only"), or when allowed only
  // because policy is in permissive mode ("policy-denied").
  std::string reason;
  int http_status = 0;  // the CONNECT's answer when refused
  // Granted only through HTTP routes, and this proxy runs the L7 layer: the
  // stream goes to it, which judges each request (docs/l7.md).
  bool l7 = false;
};

class InboundPolicy {
 public:
  InboundPolicy() = default;  // judges nothing until replaced by Open()'s
  // Opens the maps under the agent's bpffs directory (read-only).
  static absl::StatusOr<InboundPolicy> Open(const std::string& bpffs);
  // `peer`: the identity the tunnel's certificate proved ("ns/sa");
  // `forwarded`: the stream's Forwarded header, which names the source pod.
  // `l7_layer`: this proxy runs the L7 layer (an HTTP-routes-only grant
  // is then allowed with `l7` set, and judged per request).
  InboundVerdict Judge(const Runtime& rt, const std::string& peer, absl::string_view forwarded,
                       const Destination& dst, bool l7_layer = false) const;
  // The agent's policy mode is enforce (or unreadable: fail closed).
  bool Enforcing() const;

 private:
  // The address's ipcache entry; false when it has none.
  bool Lookup(const Destination& d, uint32_t* identity, uint32_t* flags) const;
  lib::UniqueFd ipcache_, ipcache6_, policy_, config_;
};

// The address a Forwarded header's for= names ("for=10.0.0.1",
// 'for="[fd00::1]"'), as a Destination with port 0.
absl::StatusOr<Destination> ForwardedFor(absl::string_view forwarded);

}  // namespace shunt::proxy
