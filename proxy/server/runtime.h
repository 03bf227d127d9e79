// What the proxy's workers act on, built from the agent's latest
// ProxyConfig and swapped whole (never changed in place): the TLS contexts
// (the node proxy's server end, one client end per local workload
// identity) and the address tables. A tunnel keeps the context it was
// made with; new tunnels take the newest.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/certs/spiffe_id.h"
#include "proxy/control/proxy_config.h"
#include "proxy/http/l7_policy.h"
#include "proxy/server/l7_service_router.h"
#include "proxy/tls/tls_channel.h"

namespace shunt::proxy {

struct Runtime {
  ProxyConfig config;
  certs::SpiffeId node_proxy_id;
  std::shared_ptr<TlsContext> server;                          // inbound tunnels
  std::map<std::string, std::shared_ptr<TlsContext>> clients;  // identity -> outbound tunnels
  // The L7 layer's per-request policy for this node's pods (docs/l7.md).
  std::shared_ptr<const http::L7Policy> l7;
  // Services balanced per request, by "address:port" (their clusterIP).
  std::map<std::string, std::shared_ptr<const CompiledL7Service>> l7_services;

  // InvalidArgument naming the credential that is unusable, or the L7
  // object that does not compile.
  static absl::StatusOr<std::shared_ptr<const Runtime>> Build(ProxyConfig config);
  // Build's second half: the L7 layer's policy and services (all there is
  // without mTLS).
  static absl::StatusOr<std::shared_ptr<const Runtime>> BuildL7(ProxyConfig config,
                                                                std::shared_ptr<Runtime> rt);
  const std::string* IdentityOfLocalPod(const std::string& ip) const;
  const std::string* NodeOfRemotePod(const std::string& ip) const;
  // The agent's number for an identity ("ns/sa"), 0 when it has none.
  uint32_t IdentityId(const std::string& identity) const;
  // The service balanced per request at `to`, or null.
  std::shared_ptr<const CompiledL7Service> L7ServiceAt(const Destination& to) const;
  // The HTTP version a local pod's port speaks ("h2c", "http1"), when
  // its Service says; empty otherwise.
  absl::string_view UpstreamHttpAt(const Destination& to) const;
};

// The current Runtime, read by every worker, replaced by the control thread.
class RuntimeHolder {
 public:
  std::shared_ptr<const Runtime> Get() const { return rt_.load(std::memory_order_acquire); }
  void Set(std::shared_ptr<const Runtime> rt) {
    rt_.store(std::move(rt), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const Runtime>> rt_;
};

}  // namespace shunt::proxy
