// shunt-agent: the per-node daemon. See DESIGN.md.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "agent/agent.h"
#include "agent/datapath/uninstall.h"
#include "agent/lib/dashed_flags.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/fs_checks.h"
#include "agent/mtls/transparent_routing.h"
#include "shunt/abi/endpoint.h"
#include "shunt/abi/policy.h"
#include "shunt/abi/service.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, node, "",
          "name of this node (pods with spec.nodeName equal to it are local)");
ABSL_FLAG(std::string, config_dir, "",
          "file source: directory of Kubernetes YAML objects, watched");
ABSL_FLAG(std::string, source, "file",
          "object source: file (--config-dir) or kube (the API server: in-cluster, or "
          "--kubeconfig)");
ABSL_FLAG(std::string, kubeconfig, "",
          "kube source: kubeconfig file (its current-context); empty: the pod's service account");
ABSL_FLAG(std::string, cgroup_root, "",
          "cgroup v2 directory whose sockets the mesh serves (default: the cgroup2 mount)");
ABSL_FLAG(std::string, bpffs, "/sys/fs/bpf/shunt", "bpffs directory for this agent's pins");
ABSL_FLAG(std::string, api_socket, "/run/shunt/agent.sock", "unix socket of the local API");
ABSL_FLAG(int, rescan_ms, 1000, "interval of the namespace scan while a local pod is not found");
ABSL_FLAG(int, debounce_ms, 100, "quiet time after a change in --config-dir before re-reading it");
ABSL_FLAG(uint32_t, max_queued_bytes, 0,
          "unread short-circuited bytes a flow may queue at its peer before it falls back to TCP "
          "flow control (0: 4x the kernel's tcp_rmem maximum, within 64..256 MiB)");
ABSL_FLAG(uint64_t, node_tcp_memory_bytes, 0,
          "when all TCP memory of the node reaches this, short-circuited flows holding unread "
          "bytes fall back to TCP flow control (0: the kernel's tcp_mem pressure threshold)");
ABSL_FLAG(std::string, mode, "permissive",
          "enforce: deny traffic between meshed pods unless a TrafficTarget allows it; "
          "permissive: allow everything, but compute, count and report would-be denials");
ABSL_FLAG(uint32_t, udp_exchanges_per_pod, 2048,
          "UDP: new exchanges (reply tracking: client and server address and port) and new "
          "service reverse-NAT entries (replies shown from the service address) one local pod "
          "may make per 30 s each; over it, datagrams still go out, but replies are denied in "
          "enforce mode, or show the backend's address. Bounds what one pod takes of the "
          "65,536-entry maps");
ABSL_FLAG(uint32_t, policy_entries_per_namespace, SHUNT_MAX_POLICY / 4,
          "policy-map entries (sources x ports x protocols) the TrafficTargets of one namespace "
          "may take together; a TrafficTarget that would go over keeps the last grants that "
          "fitted, or grants nothing, and is reported. The map holds 262,144");
ABSL_FLAG(uint32_t, service_entries_per_namespace, SHUNT_MAX_SERVICES / 4,
          "service-map entries (clusterIP x port x protocol) the Services of one namespace may "
          "take together; a Service that would go over is ignored and reported (oldest first "
          "keep theirs). The map holds 16,384");
ABSL_FLAG(uint32_t, service_slots_per_namespace, SHUNT_MAX_SLOTS / 4,
          "slot-map entries (backend slots of tables over 4) the Services of one namespace may "
          "take together, likewise. The map holds 1,048,576");
ABSL_FLAG(uint32_t, ipcache_entries_per_namespace, SHUNT_MAX_IPCACHE / 4,
          "pod addresses (IPv4 and IPv6) the pods of one namespace may take in the ipcache; "
          "pods over it are left out (reported), this node's pods counted first. The map holds "
          "65,536 of each family");
ABSL_FLAG(std::vector<std::string>, pod_cidrs, {},
          "the cluster's pod address ranges, comma-separated (10.244.0.0/16,fd00:10:244::/56): a "
          "new flow to a meshed pod from an address there that no known pod holds (a pod the "
          "agent has not learned yet) is judged as an identity without grants: denied in "
          "enforce mode, reported in permissive mode. Empty: such sources are not meshed");
ABSL_FLAG(bool, allow_icmp_echo, false,
          "enforce mode: let ICMP echo (ping) pass between meshed pods; other protocols than TCP "
          "and UDP, and ICMP other than errors of an allowed flow, are always denied there");
ABSL_FLAG(bool, telemetry, true,
          "keep a record of every TCP flow of local pods (bytes, connect and response latency, "
          "verdict) and serve them (shuntctl flows); --telemetry=false turns the kernel side off");
ABSL_FLAG(std::string, metrics_addr, "",
          "HOST:PORT to serve Prometheus /metrics and the SMI TrafficMetrics API "
          "(/apis/metrics.smi-spec.io/v1alpha1/...) on, e.g. 0.0.0.0:9464; empty: not served");
ABSL_FLAG(std::string, health_addr, "",
          "HOST:PORT to serve only /healthz and /readyz on (for probes that must not reach "
          "/metrics); empty: not served");
ABSL_FLAG(int, health_stall_ms, 10000,
          "/healthz (on --metrics-addr and --health-addr) fails once the agent's loop has not "
          "turned for this "
          "many milliseconds");
ABSL_FLAG(std::string, mtls, "off",
          "mutual TLS between nodes (docs/mtls.md): off; permissive (tunnel to meshed nodes, "
          "accept plaintext from meshless ones and report it); strict (nothing in plaintext "
          "between nodes). Needs --ca-dir");
ABSL_FLAG(std::string, ca_dir, "",
          "directory with the cluster CA's ca.crt and ca.key (shuntctl ca init --dir DIR; a "
          "Secret in Kubernetes): the agent issues its local workloads' certificates from it");
ABSL_FLAG(std::string, trust_domain, "cluster.local",
          "SPIFFE trust domain of workload identities: spiffe://TRUST_DOMAIN/ns/NS/sa/SA");
ABSL_FLAG(absl::Duration, cert_ttl, absl::Hours(24),
          "lifetime of workload certificates (10m..366d); each is renewed at half of it");
ABSL_FLAG(std::vector<std::string>, node_ip, {},
          "with --mtls: the node's addresses (an IPv4, optionally an IPv6; comma-separated), "
          "where its proxy listens and where other nodes' proxies reach it (Kubernetes: "
          "status.hostIP). Default: the source address of the default route");
ABSL_FLAG(std::string, proxy_bin, "",
          "with --mtls: the shunt-proxy program the agent runs and supervises (default: "
          "shunt-proxy beside shunt-agent)");
ABSL_FLAG(int, proxy_inbound_port, 15008,
          "with --mtls: the port of the proxy's inbound listener on the node's address, where "
          "other nodes' proxies open tunnels (HBONE's)");
ABSL_FLAG(int, proxy_l7_port, 15006,
          "with --mtls: the port of the proxy's L7 listener on the node's address, where the "
          "kernel sends connections whose grant is HTTP routes only (0: none; docs/l7.md)");
ABSL_FLAG(std::string, trace_otlp_endpoint, "",
          "with --mtls: where the proxy sends the spans of the requests its L7 layer forwards, "
          "as OTLP/HTTP JSON: a collector's base URL (http://otel-collector:4318, to which "
          "/v1/traces is added) or its traces URL; empty: no export (docs/l7.md)");
ABSL_FLAG(int, l7_max_connections, 20000,
          "with --mtls: connections the proxy's L7 layer holds open at once (1..1000000); more "
          "are refused (reset, l7-connection-limit in shuntctl drops)");
ABSL_FLAG(int, l7_max_header_bytes, 65536,
          "with --mtls: an HTTP request's or response's head through the L7 layer "
          "(1024..1048576 bytes); a larger request head gets 431");
ABSL_FLAG(int, l7_max_headers, 100,
          "with --mtls: header lines in an HTTP/1.x head (8..1000); more get 431");
ABSL_FLAG(absl::Duration, l7_header_timeout, absl::Seconds(10),
          "with --mtls: a request head must be complete this long after its first byte "
          "(100ms..5m; slow-loris clients get 408)");
ABSL_FLAG(absl::Duration, l7_idle_timeout, absl::Seconds(60),
          "with --mtls: an L7 connection with no request in flight closes after this (1s..1h)");
ABSL_FLAG(absl::Duration, l7_connect_timeout, absl::Seconds(5),
          "with --mtls: an L7 request's upstream connection must be established within this "
          "(100ms..5m); past it the attempt fails as a connect failure (retried elsewhere "
          "with retry-on connect-failure, else 502)");
ABSL_FLAG(absl::Duration, l7_stream_idle_timeout, absl::Minutes(5),
          "with --mtls: an L7 request on which nothing moves either way this long ends (1s..1h; "
          "a stalled request body, an answer never sent or never read): HTTP/2 resets its "
          "stream, HTTP/1.1 answers 408 or 504");
ABSL_FLAG(absl::Duration, proxy_handshake_timeout, absl::Seconds(10),
          "with --mtls: a tunnel's TCP connect and TLS handshake must complete within this "
          "(100ms..5m); a peer that never finishes is dropped and counted");
ABSL_FLAG(bool, uninstall, false, "detach and unpin everything under --bpffs, then exit");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shunt-agent --node NAME --config-dir DIR [--cgroup-root PATH] [--bpffs DIR] "
      "[--api-socket PATH]\n  shunt-agent --node NAME --source=kube [--kubeconfig FILE] ...\n  "
      "shunt-agent --uninstall [--bpffs DIR]");
  shunt::lib::NormalizeDashedFlags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  if (absl::GetFlag(FLAGS_uninstall)) {
    // The mTLS proxy's policy routing (absent when --mtls never ran).
    if (auto st = shunt::mtls::RemoveTransparentRouting(); !st.ok())
      spdlog::warn("{}", st.message());
    auto r = shunt::datapath::Uninstall(absl::GetFlag(FLAGS_bpffs));
    if (!r.ok()) {
      spdlog::error("{}", r.status().message());
      return 1;
    }
    spdlog::info("{}", *r);
    return 0;
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "enforce" && mode != "permissive") {
    spdlog::error("--mode={}: expected enforce or permissive", mode);
    return 2;
  }
  shunt::agent::AgentConfig config{
      .node = absl::GetFlag(FLAGS_node),
      .source = absl::GetFlag(FLAGS_source),
      .config_dir = absl::GetFlag(FLAGS_config_dir),
      .kubeconfig = absl::GetFlag(FLAGS_kubeconfig),
      .cgroup_root = absl::GetFlag(FLAGS_cgroup_root),
      .bpffs_dir = absl::GetFlag(FLAGS_bpffs),
      .api_socket = absl::GetFlag(FLAGS_api_socket),
      .rescan_ms = absl::GetFlag(FLAGS_rescan_ms),
      .debounce_ms = absl::GetFlag(FLAGS_debounce_ms),
      .max_queued_bytes = absl::GetFlag(FLAGS_max_queued_bytes),
      .node_tcp_memory_bytes = absl::GetFlag(FLAGS_node_tcp_memory_bytes),
      .mode = mode == "enforce" ? uint32_t{SHUNT_MODE_ENFORCE} : uint32_t{SHUNT_MODE_PERMISSIVE},
      .udp_exchanges_per_pod = absl::GetFlag(FLAGS_udp_exchanges_per_pod),
      .allow_icmp_echo = absl::GetFlag(FLAGS_allow_icmp_echo),
      .pod_cidrs = absl::GetFlag(FLAGS_pod_cidrs),
      .policy_entries_per_namespace = absl::GetFlag(FLAGS_policy_entries_per_namespace),
      .service_entries_per_namespace = absl::GetFlag(FLAGS_service_entries_per_namespace),
      .service_slots_per_namespace = absl::GetFlag(FLAGS_service_slots_per_namespace),
      .ipcache_entries_per_namespace = absl::GetFlag(FLAGS_ipcache_entries_per_namespace),
      .telemetry = absl::GetFlag(FLAGS_telemetry),
      .metrics_addr = absl::GetFlag(FLAGS_metrics_addr),
      .health_addr = absl::GetFlag(FLAGS_health_addr),
      .health_stall_ms = absl::GetFlag(FLAGS_health_stall_ms),
      .mtls = absl::GetFlag(FLAGS_mtls),
      .ca_dir = absl::GetFlag(FLAGS_ca_dir),
      .trust_domain = absl::GetFlag(FLAGS_trust_domain),
      .cert_ttl_s = absl::ToInt64Seconds(absl::GetFlag(FLAGS_cert_ttl)),
      .node_ips = absl::GetFlag(FLAGS_node_ip),
      .proxy_bin = absl::GetFlag(FLAGS_proxy_bin),
      .proxy_inbound_port = absl::GetFlag(FLAGS_proxy_inbound_port),
      .proxy_l7_port = absl::GetFlag(FLAGS_proxy_l7_port),
      .trace_otlp_endpoint = absl::GetFlag(FLAGS_trace_otlp_endpoint),
      .l7_max_connections = absl::GetFlag(FLAGS_l7_max_connections),
      .l7_max_header_bytes = absl::GetFlag(FLAGS_l7_max_header_bytes),
      .l7_max_headers = absl::GetFlag(FLAGS_l7_max_headers),
      .l7_header_timeout_ms = absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_l7_header_timeout)),
      .l7_idle_timeout_ms = absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_l7_idle_timeout)),
      .l7_connect_timeout_ms = absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_l7_connect_timeout)),
      .l7_stream_idle_timeout_ms =
          absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_l7_stream_idle_timeout)),
      .proxy_handshake_timeout_ms =
          absl::ToInt64Milliseconds(absl::GetFlag(FLAGS_proxy_handshake_timeout)),
  };
  if (config.cgroup_root.empty()) {
    auto mount = shunt::lib::FindCgroup2Mount();
    if (!mount.ok()) {
      spdlog::error("{}; pass --cgroup-root", mount.status().message());
      return 2;
    }
    config.cgroup_root = *mount;
  }
  auto agent = shunt::agent::Agent::Create(config);
  if (!agent.ok()) {
    spdlog::error("{}", agent.status().message());
    return absl::IsInvalidArgument(agent.status()) ? 2 : 1;
  }
  spdlog::info("agent for node {} ready; api at {}", config.node, config.api_socket);
  if (auto s = (*agent)->Run(); !s.ok()) {
    spdlog::error("{}", s.message());
    return 1;
  }
  return 0;
}
