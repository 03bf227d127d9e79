// What one agent instance serves. Several agents (simulated nodes) can run
// side by side on one kernel as long as these differ.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/source/kube/reflector.h"
#include "shunt/abi/endpoint.h"
#include "shunt/abi/policy.h"
#include "shunt/abi/service.h"

namespace shunt::agent {

struct AgentConfig {
  std::string node;
  std::string source = "file";                  // "file" (config_dir) or "kube" (the API server)
  std::string config_dir;                       // file source
  std::string kubeconfig;                       // kube source: empty = in-cluster service account
  source::kube::ReflectorOptions kube_options;  // kube source: paging, timeouts, backoff
  std::string cgroup_root;
  std::string bpffs_dir = "/sys/fs/bpf/shunt";
  std::string api_socket = "/run/shunt/agent.sock";
  int rescan_ms = 1000;                   // namespace scan interval while a local pod is missing
  int debounce_ms = 100;                  // quiet time after a config change before re-reading it
  uint32_t max_queued_bytes = 0;          // see DatapathOptions
  uint64_t node_tcp_memory_bytes = 0;     // see DatapathOptions
  uint32_t mode = 0;                      // SHUNT_MODE_PERMISSIVE or SHUNT_MODE_ENFORCE
  uint32_t udp_exchanges_per_pod = 2048;  // see DatapathOptions
  bool allow_icmp_echo = false;           // ping between meshed pods in enforce mode
  std::vector<std::string> pod_cidrs;     // --pod-cidrs, checked by Validate()
  uint32_t policy_entries_per_namespace = SHUNT_MAX_POLICY / 4;     // see PolicyCompiler
  uint32_t service_entries_per_namespace = SHUNT_MAX_SERVICES / 4;  // see services::NamespaceBudget
  uint32_t service_slots_per_namespace = SHUNT_MAX_SLOTS / 4;
  uint32_t ipcache_entries_per_namespace = SHUNT_MAX_IPCACHE / 4;  // see endpoints::PlanInput
  bool telemetry = true;         // flow records in the kernel, metrics in the agent
  std::string metrics_addr;      // HOST:PORT for /metrics and TrafficMetrics; empty = off
  std::string health_addr;       // HOST:PORT for /healthz and /readyz only; empty = off
  int health_stall_ms = 10'000;  // /healthz fails when the loop has not turned for this long
  // Mutual TLS between nodes (docs/mtls.md): "off", "permissive" or "strict";
  // the cluster CA's directory (ca.crt, ca.key) and trust domain; the
  // lifetime of workload certificates.
  std::string mtls = "off";
  std::string ca_dir;
  std::string trust_domain = "cluster.local";
  int64_t cert_ttl_s = 24 * 3600;
  // The node's addresses (an IPv4, optionally an IPv6), where its proxy
  // listens; empty: the source address of the default route. The proxy's
  // program (empty: shunt-proxy beside the agent) and its inbound port.
  std::vector<std::string> node_ips;
  std::string proxy_bin;
  int proxy_inbound_port = 15008;
  int proxy_l7_port = 15006;        // 0: no L7 layer
  std::string trace_otlp_endpoint;  // the proxy's span export (OTLP/HTTP); empty: off
  // The L7 layer's limits (docs/l7.md "Limits").
  int l7_max_connections = 20000;
  int l7_max_header_bytes = 65536;
  int l7_max_headers = 100;
  int64_t l7_header_timeout_ms = 10'000;
  int64_t l7_idle_timeout_ms = 60'000;
  int64_t l7_connect_timeout_ms = 5'000;
  int64_t l7_stream_idle_timeout_ms = 300'000;
  int64_t proxy_handshake_timeout_ms = 10'000;  // a tunnel's connect + TLS handshake

  // InvalidArgument naming the flag.
  absl::Status Validate() const;
};

}  // namespace shunt::agent
