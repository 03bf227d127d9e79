#include "flow_view.h"

#include "absl/strings/str_cat.h"
#include "agent/lib/counters.h"
#include "agent/lib/ip.h"
#include "agent/telemetry/histogram.h"

namespace shunt::telemetry {
namespace {

nlohmann::json EndJson(uint32_t ip_be, uint16_t port_be, const Peer& p) {
  nlohmann::json j = {
      {"ip", lib::Ipv4String(ip_be)}, {"port", ntohs(port_be)}, {"workload", p.workload}};
  if (p.known()) {
    j["namespace"] = p.namespace_;
    j["pod"] = p.pod;
    j["service_account"] = p.service_account;
  }
  return j;
}

}  // namespace

const char* VerdictName(uint8_t v) {
  switch (v) {
    case SHUNT_FLOW_ALLOWED:
      return "allowed";
    case SHUNT_FLOW_L7:
      return "l7";
    case SHUNT_FLOW_AUDIT:
      return "audit";
    case SHUNT_FLOW_DENIED:
      return "denied";
    default:
      return "unmeshed";
  }
}

const char* EndName(uint8_t e) {
  switch (e) {
    case SHUNT_FLOW_CLOSED:
      return "closed";
    case SHUNT_FLOW_RESET:
      return "reset";
    case SHUNT_FLOW_REFUSED:
      return "refused";
    case SHUNT_FLOW_DENIED_END:
      return "denied";
    default:
      return "open";
  }
}

bool ShortCircuited(const shunt_flow& f) {
  return (f.flags & SHUNT_FLOW_F_SHORT_CIRCUIT) == SHUNT_FLOW_F_SHORT_CIRCUIT;
}

const char* PathName(const shunt_flow& f) {
  if (f.flags & SHUNT_FLOW_F_MTLS) return "mtls";
  if (f.flags & SHUNT_FLOW_F_L7) return "l7";
  return ShortCircuited(f) && f.tcp_reason == SHUNT_TCP_NONE ? "short-circuit" : "tcp";
}

int64_t MonotonicToWall(uint64_t mono_ns, const lib::Clock& clock) {
  if (mono_ns == 0) return 0;
  return lib::MonotonicStampToWall(mono_ns, clock.MonotonicNs(), clock.RealtimeNs());
}

nlohmann::json FlowJson(const FlowView& f, const std::string& trust_domain) {
  const FlowRecord& r = f.raw;
  LatencyHistogram rr;
  rr.AddBuckets(r.rr_hist, r.rr_sum_ns);
  nlohmann::json j = {
      {"client", EndJson(r.key.client_ip4, r.key.client_port, f.client)},
      {"server", EndJson(r.key.server_ip4, r.key.server_port, f.server)},
      {"start_unix_ns", f.start_wall_ns},
      {"path", PathName(r)},
      {"verdict", VerdictName(r.verdict)},
      {"end", EndName(r.end)},
      {"bytes_to_server", r.bytes[0]},
      {"bytes_to_client", r.bytes[1]},
      {"msgs_to_server", r.msgs[0]},
      {"msgs_to_client", r.msgs[1]},
      {"requests", rr.count()},
  };
  if (f.seq) j["seq"] = f.seq;
  if (r.flags & SHUNT_FLOW_F_MTLS) {
    // On the receiving node the client is the one on the other node.
    const Peer& remote = (r.flags & SHUNT_FLOW_F_MTLS_INBOUND) ? f.client : f.server;
    if (remote.known())
      j["peer_identity"] = absl::StrCat("spiffe://", trust_domain, "/ns/", remote.namespace_,
                                        "/sa/", remote.service_account);
  }
  if (f.end_wall_ns) {
    j["end_unix_ns"] = f.end_wall_ns;
    j["duration_us"] = (f.end_wall_ns - f.start_wall_ns) / 1000;
  }
  if (r.connect_ns) j["connect_us"] = static_cast<double>(r.connect_ns) / 1e3;
  if (!ShortCircuited(r) && r.end != SHUNT_FLOW_OPEN && r.end != SHUNT_FLOW_DENIED_END) {
    j["srtt_us"] = r.srtt_us;
    if (r.min_rtt_us != UINT32_MAX) j["min_rtt_us"] = r.min_rtt_us;  // ~0 = no RTT sample yet
    j["retransmits"] = r.retrans;
  }
  if (!rr.empty()) {
    j["response_latency_us"] = {{"mean", static_cast<double>(rr.sum_ns()) / rr.count() / 1e3},
                                {"p50", rr.Quantile(0.5) / 1e3},
                                {"p99", rr.Quantile(0.99) / 1e3}};
  }
  if (!f.rule.empty()) j["rule"] = f.rule;
  // Why it is (or ended) on TCP although both ends are local pods.
  if (r.tcp_reason != SHUNT_TCP_NONE) j["tcp_reason"] = lib::TcpReasonName(r.tcp_reason);
  return j;
}

}  // namespace shunt::telemetry
