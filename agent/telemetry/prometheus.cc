#include "prometheus.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/prometheus_text.h"

namespace shunt::telemetry {
namespace {

std::string Escape(const std::string& v) { return lib::PrometheusLabelValue(v); }

std::string Identity(const std::string& ns, const std::string& sa) {
  return sa.empty() ? "" : absl::StrCat(ns, "/", sa);
}

std::string EdgeLabels(const EdgeKey& k) {
  return absl::StrCat(
      "src_namespace=\"", Escape(k.src_namespace), "\",src_workload=\"", Escape(k.src_workload),
      "\",src_identity=\"", Escape(Identity(k.src_namespace, k.src_service_account)),
      "\",dst_namespace=\"", Escape(k.dst_namespace), "\",dst_workload=\"", Escape(k.dst_workload),
      "\",dst_identity=\"", Escape(Identity(k.dst_namespace, k.dst_service_account)),
      "\",dst_port=\"", k.port, "\"");
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

// Buckets at powers of two from 2^10 ns (1.024 us) to 2^34 ns (17.2 s): the
// octave boundaries of the kernel's layout, so every count is exact. A
// sample equal to a boundary counts in the next bucket up (the kernel's
// buckets are [lower, upper)).
void Histogram(std::string& out, const char* name, const std::string& labels,
               const LatencyHistogram& h) {
  const auto cumulative = h.CumulativeBuckets();
  for (size_t i = 0; i < cumulative.size(); i += 2)
    absl::StrAppend(&out, name, "_bucket{", labels, ",le=\"",
                    absl::StrFormat("%.9g", cumulative[i].first), "\"} ", cumulative[i].second,
                    "\n");
  absl::StrAppend(&out, name, "_bucket{", labels, ",le=\"+Inf\"} ", h.count(), "\n");
  absl::StrAppend(&out, name, "_sum{", labels, "} ", absl::StrFormat("%.9g", h.sum_ns() / 1e9),
                  "\n");
  absl::StrAppend(&out, name, "_count{", labels, "} ", h.count(), "\n");
}

}  // namespace

std::string RenderPrometheus(const std::vector<std::pair<EdgeKey, EdgeStats>>& edges,
                             const AgentHealth& health) {
  std::string out;
  Header(out, "shunt_flows_total", "counter",
         "TCP flows with a local pod at one end that finished, by edge and result "
         "(success = established and closed in order).");
  for (const auto& [k, s] : edges) {
    const std::string l = EdgeLabels(k);
    const std::pair<const char*, uint64_t> results[] = {
        {"success", s.successes}, {"refused", s.refused}, {"reset", s.reset}, {"denied", s.denied}};
    for (const auto& [result, n] : results)
      absl::StrAppend(&out, "shunt_flows_total{", l, ",result=\"", result, "\"} ", n, "\n");
  }
  Header(out, "shunt_flows_short_circuited_total", "counter",
         "Finished flows whose bytes went socket to socket on this node.");
  for (const auto& [k, s] : edges)
    absl::StrAppend(&out, "shunt_flows_short_circuited_total{", EdgeLabels(k), "} ",
                    s.short_circuited, "\n");
  Header(out, "shunt_flows_mtls_total", "counter",
         "Finished flows carried between nodes in the mutual-TLS tunnel (--mtls).");
  for (const auto& [k, s] : edges)
    absl::StrAppend(&out, "shunt_flows_mtls_total{", EdgeLabels(k), "} ", s.mtls, "\n");
  Header(out, "shunt_flows_audit_total", "counter",
         "Finished flows that no TrafficTarget allows, let through by permissive mode.");
  for (const auto& [k, s] : edges)
    absl::StrAppend(&out, "shunt_flows_audit_total{", EdgeLabels(k), "} ", s.audit, "\n");
  Header(out, "shunt_flow_bytes_total", "counter",
         "Payload bytes of finished flows, by direction.");
  for (const auto& [k, s] : edges) {
    const std::string l = EdgeLabels(k);
    absl::StrAppend(&out, "shunt_flow_bytes_total{", l, ",direction=\"to_server\"} ",
                    s.bytes_to_server, "\n");
    absl::StrAppend(&out, "shunt_flow_bytes_total{", l, ",direction=\"to_client\"} ",
                    s.bytes_to_client, "\n");
  }
  Header(out, "shunt_connect_latency_seconds", "histogram",
         "connect() to established, measured in the kernel for local clients.");
  for (const auto& [k, s] : edges)
    Histogram(out, "shunt_connect_latency_seconds", EdgeLabels(k), s.connect);
  Header(out, "shunt_response_latency_seconds", "histogram",
         "Start of a request (bytes towards the server) to the start of its response, per flow "
         "(short-circuit: at sk_msg; TCP path: at the pod's veth).");
  for (const auto& [k, s] : edges)
    Histogram(out, "shunt_response_latency_seconds", EdgeLabels(k), s.response);

  // The agent's own health.
  Header(out, "shunt_bpf_map_entries", "gauge", "Entries in each pinned BPF map.");
  for (const MapLevel& m : health.maps)
    absl::StrAppend(&out, "shunt_bpf_map_entries{map=\"", Escape(m.name), "\"} ", m.entries, "\n");
  Header(out, "shunt_bpf_map_max_entries", "gauge", "Capacity of each pinned BPF map.");
  for (const MapLevel& m : health.maps)
    absl::StrAppend(&out, "shunt_bpf_map_max_entries{map=\"", Escape(m.name), "\"} ", m.max_entries,
                    "\n");
  Header(out, "shunt_datapath_events_total", "counter",
         "The data path's counters (shuntctl status).");
  for (const auto& [name, v] : health.datapath_counters)
    absl::StrAppend(&out, "shunt_datapath_events_total{counter=\"", Escape(name), "\"} ", v, "\n");
  Header(out, "shunt_flows_on_tcp_total", "counter",
         "Flows between local pods kept off or moved off the short-circuit, by reason "
         "(docs/short-circuit.md).");
  for (const auto& [reason, v] : health.tcp_reasons)
    absl::StrAppend(&out, "shunt_flows_on_tcp_total{reason=\"", Escape(reason), "\"} ", v, "\n");
  Header(out, "shunt_flow_records_total", "counter", "Finished-flow records read from the kernel.");
  absl::StrAppend(&out, "shunt_flow_records_total ", health.flow_records, "\n");
  Header(out, "shunt_flow_records_lost_total", "counter",
         "Finished-flow records the kernel dropped because the ring buffer was full.");
  absl::StrAppend(&out, "shunt_flow_records_lost_total ", health.flow_records_lost, "\n");
  Header(out, "shunt_flow_records_malformed_total", "counter",
         "Records of an unexpected size, skipped.");
  absl::StrAppend(&out, "shunt_flow_records_malformed_total ", health.flow_records_malformed, "\n");
  Header(out, "shunt_edges", "gauge", "Edges with metrics kept in memory.");
  absl::StrAppend(&out, "shunt_edges ", health.aggregator.edges, "\n");
  Header(out, "shunt_edges_evicted_total", "counter",
         "Edges dropped to keep memory bounded (least recently active first).");
  absl::StrAppend(&out, "shunt_edges_evicted_total ", health.aggregator.edges_evicted, "\n");
  return out;
}

}  // namespace shunt::telemetry
