// The mTLS feature of the agent (docs/mtls.md): runs the node's shunt-proxy
// (ProxySupervisor), gives it the certificates the certs controller issued
// and where every pod is, and turns the kernel's hand-off on only while the
// proxy listens: shunt_mtls_config_v1 names the proxy's address once it
// said "ready". When the proxy is down, strict mode keeps the hand-off
// (connections to other nodes are refused, never sent in the clear) and
// permissive mode turns it off (they go directly, unencrypted) until the
// proxy is back.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/certs/authority.h"
#include "agent/controller.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/lib/clock.h"
#include "agent/lib/unique_fd.h"
#include "agent/mtls/proxy_supervisor.h"
#include "agent/services/service_plan.h"
#include "proxy/control/proxy_config.h"

namespace shunt::mtls {

struct MtlsOptions {
  std::string mode = "off";  // --mtls
  std::string node;
  std::string trust_domain = "cluster.local";
  std::string ca_pem;                 // the CA certificate the proxy trusts
  std::vector<std::string> node_ips;  // --node-ip: the proxy's listeners
  uint16_t outbound_port = 15001;
  uint16_t inbound_port = 15008;  // --proxy-inbound-port
  uint16_t l7_port = 15006;       // --proxy-l7-port: the L7 layer's (docs/l7.md); 0: none
  int64_t handshake_timeout_ms = 10000;
  std::string proxy_bin;       // --proxy-bin
  std::string proxy_cgroup;    // ProxyCgroup(): where it runs; empty: with the agent
  std::string cgroup_root;     // --cgroup-root (the L7-only proxy's cgroup is made at its start)
  std::string proxy_pid_file;  // see ProxyLaunch::pid_file
  std::string bpffs;
  std::string trace_otlp_endpoint;  // --trace-otlp-endpoint: span export; empty: off
  // The L7 layer's limits (--l7-*; checked by AgentConfig::Validate).
  int l7_max_connections = 20000;
  int l7_max_header_bytes = 65536;
  int l7_max_headers = 100;
  int64_t l7_header_timeout_ms = 10000;
  int64_t l7_idle_timeout_ms = 60000;
  int64_t l7_connect_timeout_ms = 5000;
  int64_t l7_stream_idle_timeout_ms = 300000;
  // --mtls=off: the proxy may still run, for the L7 layer between this
  // node's pods alone (no certificates, no tunnels), started once an
  // HTTPRouteGroup concerns one of them. False: it cannot run (no
  // proxy binary or node address; the agent said why).
  bool l7_without_mtls = false;
};

class MtlsController : public agent::Controller {
 public:
  struct Deps {
    const lib::Clock* clock = nullptr;
    MtlsOptions options;
    const endpoints::IdentityAllocator* identities = nullptr;
    lib::UniqueFd config_map;  // shunt_mtls_config_v1, writable
    // Each refusal the proxy reports (the drop log's).
    std::function<void(const nlohmann::json&)> on_refusal;
    // The requests the proxy's L7 layer finished, as each report has them
    // (RequestMetrics::TakeRecent's "requests"). Unset: dropped.
    std::function<void(const nlohmann::json&)> on_requests;
    // The services controller's plan of this pass (planned before this
    // controller): its L7 entries go to the proxy. Unset: none.
    std::function<const services::Plan*()> service_plan;
  };
  explicit MtlsController(Deps deps);

  // The certs controller's latest set (its publish callback).
  void SetCertificates(const std::vector<certs::IssuedCertificate>& certs);

  std::string_view name() const override { return "mtls"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override;
  void Tick(int64_t now_ms) override;
  std::vector<int> PollFds() const override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;
  void AddWarnings(std::vector<std::string>& lines) const override;
  // The kernel sends HTTP-routes-only grants between local pods to the
  // proxy's L7 layer: the proxy is ready and has an L7 port.
  // The proxy's per-request balancing, per thread, from its last report
  // (ServicesController's lb explain shows it).
  nlohmann::json L7Balancers() const;
  bool l7_on() const {
    return runs_proxy() && supervisor_ && supervisor_->ready() && deps_.options.l7_port != 0;
  }

 private:
  bool on() const { return deps_.options.mode != "off"; }
  // --mtls=off with the proxy for the L7 layer alone (MtlsOptions).
  bool l7_only() const {
    return !on() && deps_.options.l7_without_mtls && deps_.options.l7_port != 0;
  }
  bool runs_proxy() const { return on() || l7_only(); }
  // The fwmark routing for the replies, then the supervisor (at start with
  // mTLS; with the L7 layer alone, once something needs it).
  void StartProxy();
  void SendIfChanged();
  // Writes the hand-off switch for the proxy's state; false if the write failed.
  bool WriteKernelSwitch();

  Deps deps_;
  std::unique_ptr<ProxySupervisor> supervisor_;
  proxy::ProxyConfig config_;
  std::map<std::string, proxy::Credential> workloads_;
  std::string sent_;  // the last config sent, as JSON text
  // --mtls=off: services that ask for per-request balancing (shunt.dev/
  // annotations, a TrafficSplit with matches), which the kernel balances
  // per connection here (no tunnel reaches another node's pick): "ns/name".
  std::vector<std::string> l7_services_without_mtls_;
  std::vector<std::string> pods_without_host_ip_;
  bool handoff_on_ = false;
  bool transparent_ = false;   // the fwmark routing is in place
  bool proxy_failed_ = false;  // the L7-only proxy could not be started
  // --mtls=off: the switch was written by this agent (not an earlier
  // L7-only proxy's left for it to drain).
  bool switch_settled_ = false;
  std::string transparent_error_;
  std::string switch_error_;
};

}  // namespace shunt::mtls
