#include "agent_config.h"

#include <arpa/inet.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/certs/spiffe_id.h"
#include "agent/http/server.h"
#include "agent/lib/cidr.h"
#include "shunt/abi/policy.h"

namespace shunt::agent {

absl::Status AgentConfig::Validate() const {
  if (node.empty()) return absl::InvalidArgumentError("--node is required");
  if (source == "file") {
    if (config_dir.empty())
      return absl::InvalidArgumentError("--config-dir is required with --source=file");
    if (!kubeconfig.empty()) return absl::InvalidArgumentError("--kubeconfig is for --source=kube");
  } else if (source == "kube") {
    if (!config_dir.empty()) return absl::InvalidArgumentError("--config-dir is for --source=file");
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--source=", source, ": expected file or kube"));
  }
  if (cgroup_root.empty()) return absl::InvalidArgumentError("--cgroup-root is required");
  if (bpffs_dir.empty() || bpffs_dir[0] != '/')
    return absl::InvalidArgumentError(
        absl::StrCat("--bpffs must be an absolute path, got '", bpffs_dir, "'"));
  if (api_socket.empty()) return absl::InvalidArgumentError("--api-socket is required");
  if (health_stall_ms < 100)
    return absl::InvalidArgumentError("--health-stall-ms must be at least 100");
  if (rescan_ms < 50) return absl::InvalidArgumentError("--rescan-ms must be at least 50");
  if (debounce_ms < 0 || debounce_ms > 10000)
    return absl::InvalidArgumentError("--debounce-ms must be within 0..10000");
  if (udp_exchanges_per_pod < 16 || udp_exchanges_per_pod > SHUNT_MAX_UDP_EXCHANGES)
    return absl::InvalidArgumentError(absl::StrCat("--udp-exchanges-per-pod must be within 16..",
                                                   SHUNT_MAX_UDP_EXCHANGES, ", got ",
                                                   udp_exchanges_per_pod));
  if (policy_entries_per_namespace < 1 || policy_entries_per_namespace > SHUNT_MAX_POLICY)
    return absl::InvalidArgumentError(
        absl::StrCat("--policy-entries-per-namespace must be within 1..", SHUNT_MAX_POLICY,
                     ", got ", policy_entries_per_namespace));
  if (service_entries_per_namespace < 1 || service_entries_per_namespace > SHUNT_MAX_SERVICES)
    return absl::InvalidArgumentError(
        absl::StrCat("--service-entries-per-namespace must be within 1..", SHUNT_MAX_SERVICES,
                     ", got ", service_entries_per_namespace));
  if (service_slots_per_namespace < 1 || service_slots_per_namespace > SHUNT_MAX_SLOTS)
    return absl::InvalidArgumentError(
        absl::StrCat("--service-slots-per-namespace must be within 1..", SHUNT_MAX_SLOTS, ", got ",
                     service_slots_per_namespace));
  if (ipcache_entries_per_namespace < 1 || ipcache_entries_per_namespace > SHUNT_MAX_IPCACHE)
    return absl::InvalidArgumentError(
        absl::StrCat("--ipcache-entries-per-namespace must be within 1..", SHUNT_MAX_IPCACHE,
                     ", got ", ipcache_entries_per_namespace));
  for (const std::string& c : pod_cidrs)
    if (auto k = lib::ParseCidr(c); !k.ok())
      return absl::InvalidArgumentError(absl::StrCat("--pod-cidrs: ", k.status().message()));
  if (pod_cidrs.size() > SHUNT_MAX_POD_CIDRS)
    return absl::InvalidArgumentError(absl::StrCat("--pod-cidrs: at most ", SHUNT_MAX_POD_CIDRS,
                                                   " ranges, got ", pod_cidrs.size()));
  if (!metrics_addr.empty()) {
    if (auto a = http::ParseListenAddress(metrics_addr); !a.ok())
      return absl::InvalidArgumentError(absl::StrCat("--metrics-addr ", a.status().message()));
  }
  if (!health_addr.empty()) {
    if (auto a = http::ParseListenAddress(health_addr); !a.ok())
      return absl::InvalidArgumentError(absl::StrCat("--health-addr ", a.status().message()));
  }
  if (mtls != "off" && mtls != "permissive" && mtls != "strict")
    return absl::InvalidArgumentError(
        absl::StrCat("--mtls=", mtls, ": expected off, permissive or strict"));
  if (mtls != "off" && ca_dir.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("--mtls=", mtls, " needs --ca-dir (a CA from `shuntctl ca init --dir DIR`)"));
  if (auto s = certs::CheckTrustDomain(trust_domain); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("--trust-domain: ", s.message()));
  if (cert_ttl_s < 600 || cert_ttl_s > 366 * 24 * 3600)
    return absl::InvalidArgumentError(absl::StrCat(
        "--cert-ttl must be within 10m..366d (renewed at half of it), got ", cert_ttl_s, " s"));
  if (proxy_inbound_port < 1 || proxy_inbound_port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("--proxy-inbound-port must be within 1..65535, got ", proxy_inbound_port));
  if (proxy_inbound_port == 15001)
    return absl::InvalidArgumentError(
        "--proxy-inbound-port=15001 is the proxy's outbound port (handed-off pod connections)");
  if (proxy_l7_port < 0 || proxy_l7_port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("--proxy-l7-port must be within 0..65535 (0: none), got ", proxy_l7_port));
  if (proxy_l7_port == 15001 || proxy_l7_port == proxy_inbound_port)
    return absl::InvalidArgumentError(absl::StrCat(
        "--proxy-l7-port=", proxy_l7_port, " is taken by the proxy's ",
        proxy_l7_port == 15001 ? "outbound port" : "inbound port (--proxy-inbound-port)"));
  if (l7_max_connections < 1 || l7_max_connections > 1'000'000)
    return absl::InvalidArgumentError(
        absl::StrCat("--l7-max-connections must be within 1..1000000, got ", l7_max_connections));
  if (l7_max_header_bytes < 1024 || l7_max_header_bytes > (1 << 20))
    return absl::InvalidArgumentError(absl::StrCat(
        "--l7-max-header-bytes must be within 1024..1048576, got ", l7_max_header_bytes));
  if (l7_max_headers < 8 || l7_max_headers > 1000)
    return absl::InvalidArgumentError(
        absl::StrCat("--l7-max-headers must be within 8..1000, got ", l7_max_headers));
  if (l7_header_timeout_ms < 100 || l7_header_timeout_ms > 300'000)
    return absl::InvalidArgumentError(absl::StrCat(
        "--l7-header-timeout must be within 100ms..5m, got ", l7_header_timeout_ms, " ms"));
  if (l7_idle_timeout_ms < 1000 || l7_idle_timeout_ms > 3'600'000)
    return absl::InvalidArgumentError(
        absl::StrCat("--l7-idle-timeout must be within 1s..1h, got ", l7_idle_timeout_ms, " ms"));
  if (l7_connect_timeout_ms < 100 || l7_connect_timeout_ms > 300'000)
    return absl::InvalidArgumentError(absl::StrCat(
        "--l7-connect-timeout must be within 100ms..5m, got ", l7_connect_timeout_ms, " ms"));
  if (l7_stream_idle_timeout_ms < 1000 || l7_stream_idle_timeout_ms > 3'600'000)
    return absl::InvalidArgumentError(absl::StrCat(
        "--l7-stream-idle-timeout must be within 1s..1h, got ", l7_stream_idle_timeout_ms, " ms"));
  if (!trace_otlp_endpoint.empty()) {
    const bool http = absl::StartsWith(trace_otlp_endpoint, "http://") ||
                      absl::StartsWith(trace_otlp_endpoint, "https://");
    const size_t host = trace_otlp_endpoint.find("//") + 2;
    if (!http || host >= trace_otlp_endpoint.size() || trace_otlp_endpoint[host] == '/')
      return absl::InvalidArgumentError(
          absl::StrCat("--trace-otlp-endpoint: '", trace_otlp_endpoint,
                       "' is not an http:// or https:// URL with a host (OTLP/HTTP, e.g. "
                       "http://otel-collector.observability:4318)"));
    // The spans are the L7 layer's, in the proxy: without mTLS it runs for
    // the L7 layer alone (docs/l7.md "Without mTLS"), unless turned off.
    if (mtls == "off" && proxy_l7_port == 0)
      return absl::InvalidArgumentError(
          "--trace-otlp-endpoint needs the proxy's L7 layer, which --mtls=off with "
          "--proxy-l7-port=0 turns off: the spans are that layer's");
  }
  if (proxy_handshake_timeout_ms < 100 || proxy_handshake_timeout_ms > 300'000)
    return absl::InvalidArgumentError(
        absl::StrCat("--proxy-handshake-timeout must be within 100ms..5m, got ",
                     proxy_handshake_timeout_ms, " ms"));
  int v4 = 0, v6 = 0;
  for (const std::string& ip : node_ips) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) == 1) {
      ++v4;
    } else if (inet_pton(AF_INET6, ip.c_str(), buf) == 1) {
      ++v6;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--node-ip: '", ip, "' is not an IP address"));
    }
  }
  if (v4 > 1 || v6 > 1)
    return absl::InvalidArgumentError("--node-ip: at most one IPv4 and one IPv6 address");
  return absl::OkStatus();
}

}  // namespace shunt::agent
