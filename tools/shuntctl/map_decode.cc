#include "map_decode.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "agent/lib/counters.h"
#include "agent/lib/ip.h"
#include "agent/lib/status_macros.h"
#include "agent/lib/typed_map.h"
#include "agent/telemetry/flow_view.h"
#include "agent/telemetry/histogram.h"
#include "shunt/abi/pins.h"
#include "shunt/abi/policy.h"
#include "shunt/abi/sockmap.h"

namespace shunt::ctl {
namespace {

// A name from a map, up to its NUL. The bytes are whatever the map holds
// (a stale or foreign pin, a bug): what is not UTF-8 becomes U+FFFD, so that
// printing the rows (dump(), which throws on it) cannot end shuntctl.
std::string CString(const char* s, size_t cap) {
  const std::string raw(s, strnlen(s, cap));
  const std::string quoted = Json(raw).dump(-1, ' ', false, Json::error_handler_t::replace);
  return Json::parse(quoted).get<std::string>();
}

Json Flags(uint32_t flags, std::initializer_list<std::pair<uint32_t, const char*>> names) {
  Json out = Json::array();
  for (const auto& [bit, name] : names)
    if (flags & bit) out.push_back(name);
  return out;
}

absl::StatusOr<Json> DumpEndpoints(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto eps, m.endpoints->Entries());
  for (const auto& [cookie, ep] : eps) {
    Json row = {
        {"netns_cookie", cookie},
        {"ip", Ipv4(ep.ip4)},
        {"ip6",
         ep.ip6.w[0] | ep.ip6.w[1] | ep.ip6.w[2] | ep.ip6.w[3] ? lib::Ipv6String(&ep.ip6) : ""},
        {"identity", ep.identity},
        {"flags", Flags(ep.flags, {{SHUNT_EP_F_SHORT_CIRCUIT, "short-circuit"}})},
        // The path its same-node connections take, and why when not the
        // short-circuit (per flow: `shuntctl flows`).
        {"path", (ep.flags & SHUNT_EP_F_SHORT_CIRCUIT)
                     ? "short-circuit"
                     : "tcp (opted-out: shunt.dev/short-circuit)"}};
    if (auto meta = m.endpoint_meta->Lookup(cookie); meta.ok()) {
      row["namespace"] = CString(meta->namespace_, sizeof(meta->namespace_));
      row["name"] = CString(meta->name, sizeof(meta->name));
      row["service_account"] = CString(meta->service_account, sizeof(meta->service_account));
      row["netns_inode"] = meta->netns_inode;
    }
    rows.push_back(row);
  }
  return rows;
}

absl::StatusOr<Json> DumpEndpointMeta(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto metas, m.endpoint_meta->Entries());
  for (const auto& [cookie, meta] : metas)
    rows.push_back(
        {{"netns_cookie", cookie},
         {"namespace", CString(meta.namespace_, sizeof(meta.namespace_))},
         {"name", CString(meta.name, sizeof(meta.name))},
         {"service_account", CString(meta.service_account, sizeof(meta.service_account))},
         {"netns_inode", meta.netns_inode}});
  return rows;
}

absl::StatusOr<Json> DumpIpcache(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto entries, m.ipcache->Entries());
  for (const auto& [ip, e] : entries)
    rows.push_back({{"ip", Ipv4(ip)},
                    {"identity", e.identity},
                    {"flags", Flags(e.flags, {{SHUNT_IPC_F_LOCAL, "local"}})}});
  return rows;
}

absl::StatusOr<Json> DumpIpcache6(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto entries, m.ipcache6->Entries());
  for (const auto& [ip, e] : entries)
    rows.push_back({{"ip", lib::Ipv6String(&ip)},
                    {"identity", e.identity},
                    {"flags", Flags(e.flags, {{SHUNT_IPC_F_LOCAL, "local"}})}});
  return rows;
}

absl::StatusOr<Json> DumpSockhash(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto socks, m.sockhash());
  for (const auto& [k, cookie] : socks) {
    Json row = {{"local", absl::StrCat(Ipv4(k.local_ip4), ":", ntohs(k.local_port))},
                {"remote", absl::StrCat(Ipv4(k.remote_ip4), ":", ntohs(k.remote_port))}};
    if (cookie) row["socket_cookie"] = *cookie;
    rows.push_back(row);
  }
  return rows;
}

absl::StatusOr<Json> DumpCounters(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(lib::Counters c, m.counters());
  for (int i = 0; i < SHUNT_CTR_MAX; ++i)
    rows.push_back({{"counter", lib::CounterName(i)}, {"value", c[i]}});
  return rows;
}

std::string IdentityName(const MapSet& m, uint32_t id) {
  auto meta = m.identity_meta->Lookup(id);
  if (!meta.ok()) return absl::StrCat("#", id);
  return absl::StrCat(CString(meta->namespace_, sizeof(meta->namespace_)), "/",
                      CString(meta->service_account, sizeof(meta->service_account)));
}

absl::StatusOr<Json> DumpPolicy(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto entries, m.policy->Entries());
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.src_identity, a.first.dst_identity, a.first.proto, a.first.dport) <
           std::tie(b.first.src_identity, b.first.dst_identity, b.first.proto, b.first.dport);
  });
  for (const auto& [k, v] : entries) {
    std::string rule = absl::StrCat("#", v.rule_id);
    if (auto r = m.rule_meta->Lookup(v.rule_id); r.ok())
      rule = absl::StrCat(CString(r->namespace_, sizeof(r->namespace_)), "/",
                          CString(r->name, sizeof(r->name)));
    rows.push_back({{"source", IdentityName(m, k.src_identity)},
                    {"destination", IdentityName(m, k.dst_identity)},
                    {"port", k.dport == 0 ? Json("any") : Json(ntohs(k.dport))},
                    {"proto", k.proto == 17 ? "udp" : "tcp"},
                    {"verdict", v.verdict == SHUNT_VERDICT_ALLOW ? "allow"
                                : v.verdict == SHUNT_VERDICT_L7  ? "l7"
                                                                 : "?"},
                    {"traffic_target", rule},
                    {"src_identity", k.src_identity},
                    {"dst_identity", k.dst_identity}});
  }
  return rows;
}

absl::StatusOr<Json> DumpIdentities(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto ids, m.identity_meta->Entries());
  std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  SHUNT_ASSIGN_OR_RETURN(auto ipcache, m.ipcache->Entries());
  for (const auto& [id, meta] : ids) {
    int pods = 0, local = 0;
    for (const auto& [ip, e] : ipcache) {
      if (e.identity != id) continue;
      ++pods;
      local += (e.flags & SHUNT_IPC_F_LOCAL) != 0;
    }
    rows.push_back(
        {{"identity", id},
         {"namespace", CString(meta.namespace_, sizeof(meta.namespace_))},
         {"service_account", CString(meta.service_account, sizeof(meta.service_account))},
         {"pods", pods},
         {"local_pods", local}});
  }
  return rows;
}

absl::StatusOr<Json> DumpRules(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto rules, m.rule_meta->Entries());
  for (const auto& [id, r] : rules)
    rows.push_back({{"rule_id", id},
                    {"namespace", CString(r.namespace_, sizeof(r.namespace_))},
                    {"traffic_target", CString(r.name, sizeof(r.name))}});
  return rows;
}

absl::StatusOr<Json> DumpConfig(const MapSet& m) {
  SHUNT_ASSIGN_OR_RETURN(shunt_config c, m.config->Lookup(0));
  return Json::array({{{"mode", c.mode == SHUNT_MODE_ENFORCE ? "enforce" : "permissive"},
                       {"telemetry", (c.flags & SHUNT_CONFIG_F_NO_TELEMETRY) ? "off" : "on"}}});
}

// Live flow records straight from the kernel (the agent names them better:
// `shuntctl flows`; this works with the agent down).
absl::StatusOr<Json> DumpFlows(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto flows, m.flows->Entries());
  for (const auto& [k, f] : flows) {
    rows.push_back({{"client", absl::StrCat(Ipv4(k.client_ip4), ":", ntohs(k.client_port))},
                    {"server", absl::StrCat(Ipv4(k.server_ip4), ":", ntohs(k.server_port))},
                    {"source", IdentityName(m, f.src_identity)},
                    {"destination", IdentityName(m, f.dst_identity)},
                    {"path", telemetry::PathName(f)},
                    {"tcp_reason", lib::TcpReasonName(f.tcp_reason)},
                    {"verdict", telemetry::VerdictName(f.verdict)},
                    {"state", (f.flags & SHUNT_FLOW_F_ESTABLISHED) ? "established" : "connecting"},
                    {"bytes_to_server", f.bytes[0]},
                    {"bytes_to_client", f.bytes[1]},
                    {"requests", f.rr_count},
                    {"connect_us", static_cast<double>(f.connect_ns) / 1e3}});
  }
  return rows;
}

// The response-latency histograms of live flows that answered requests
// (a flow's histogram goes with its record when it ends).
absl::StatusOr<Json> DumpFlowHists(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto hists, m.flow_hists->Entries());
  for (const auto& [k, h] : hists) {
    telemetry::LatencyHistogram rr;
    rr.AddBuckets(h.rr_hist, 0);
    rows.push_back({{"client", absl::StrCat(Ipv4(k.client_ip4), ":", ntohs(k.client_port))},
                    {"server", absl::StrCat(Ipv4(k.server_ip4), ":", ntohs(k.server_port))},
                    {"responses", rr.count()},
                    {"p50_us", rr.empty() ? 0.0 : rr.Quantile(0.5) / 1e3},
                    {"p99_us", rr.empty() ? 0.0 : rr.Quantile(0.99) / 1e3}});
  }
  return rows;
}

std::string BackendString(const shunt_backend& b) {
  return absl::StrCat(Ipv4(b.ip), ":", ntohs(b.port));
}

// Service addresses with their balancer and slot tables as the kernel has
// them (the agent's view, with pods and live shares: `shuntctl services`).
absl::StatusOr<Json> DumpServices(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto svcs, m.services->Entries());
  SHUNT_ASSIGN_OR_RETURN(auto slots, m.slots->Entries());
  std::map<uint32_t, std::map<uint32_t, shunt_backend>> tables;
  for (const auto& [k, b] : slots) tables[k.table][k.index] = b;
  for (const auto& [k, v] : svcs) {
    // Backends by number of slots: the weights of a TrafficSplit table.
    std::map<std::string, uint32_t> share;
    if (v.table == 0) {
      for (uint32_t i = 0; i < v.slots && i < SHUNT_SVC_INLINE; ++i)
        ++share[BackendString(v.inline_slots[i])];
    } else {
      for (const auto& [i, b] : tables[v.table]) ++share[BackendString(b)];
    }
    Json backends = Json::array();
    for (const auto& [addr, n] : share) backends.push_back({{"backend", addr}, {"slots", n}});
    rows.push_back({{"address", absl::StrCat(Ipv4(k.vip), ":", ntohs(k.port))},
                    {"proto", k.proto == 17 ? "udp" : "tcp"},
                    {"svc_id", v.svc_id},
                    {"balancer", v.lb == SHUNT_LB_P2C_EWMA ? "p2c-ewma" : "random"},
                    {"table", v.table == 0 ? std::string("inline") : absl::StrCat(v.table)},
                    {"slots", v.slots},
                    {"backends", std::move(backends)}});
  }
  return rows;
}

absl::StatusOr<Json> DumpLbScores(const MapSet& m) {
  Json rows = Json::array();
  SHUNT_ASSIGN_OR_RETURN(auto scores, m.lb_scores->Entries());
  for (const auto& [k, v] : scores)
    rows.push_back({{"backend", BackendString(k)}, {"score", v.score}});
  return rows;
}

absl::StatusOr<Json> DumpMeta(const MapSet& m) {
  SHUNT_ASSIGN_OR_RETURN(shunt_meta meta, m.meta->Lookup(0));
  return Json::array(
      {{{"abi_version", meta.abi_version}, {"installed_at_unix", meta.installed_at_unix}}});
}

}  // namespace

std::string Str(const Json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

std::string Ipv4(uint32_t be) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &be, buf, sizeof(buf));
  return buf;
}

std::string ResolveMapName(const std::string& name) {
  static const std::pair<const char*, const char*> kShort[] = {
      {"meta", SHUNT_MAP_META},
      {"endpoints", SHUNT_MAP_ENDPOINTS},
      {"ep_meta", SHUNT_MAP_ENDPOINT_META},
      {"ipcache", SHUNT_MAP_IPCACHE},
      {"ipcache6", SHUNT_MAP_IPCACHE6},
      {"sockhash", SHUNT_MAP_SOCKHASH},
      {"counters", SHUNT_MAP_COUNTERS},
      {"policy", SHUNT_MAP_POLICY},
      {"identities", SHUNT_MAP_IDENTITY_META},
      {"rules", SHUNT_MAP_RULE_META},
      {"config", SHUNT_MAP_CONFIG},
      {"flows", SHUNT_MAP_FLOWS},
      {"flow_hists", SHUNT_MAP_FLOW_HISTS},
      {"services", SHUNT_MAP_SERVICES},
      {"lb_scores", SHUNT_MAP_LB_SCORES}};
  for (const auto& [s, pin] : kShort)
    if (name == s || name == pin) return pin;
  return "";
}

absl::StatusOr<Json> DumpMap(const lib::PinnedMaps& pinned, const std::string& name) {
  const auto endpoints = pinned.endpoints();
  const auto endpoint_meta = pinned.endpoint_meta();
  const auto ipcache = pinned.ipcache();
  const auto ipcache6 = pinned.ipcache6();
  const auto meta = pinned.meta();
  const auto policy = pinned.policy();
  const auto rule_meta = pinned.rule_meta();
  const auto identity_meta = pinned.identity_meta();
  const auto config = pinned.config();
  const auto flows = pinned.flows();
  const auto flow_hists = pinned.flow_hists();
  const auto services = pinned.services();
  const auto slots = pinned.slots();
  const auto lb_scores = pinned.lb_scores();
  const MapSet maps{
      .endpoints = &endpoints,
      .endpoint_meta = &endpoint_meta,
      .ipcache = &ipcache,
      .ipcache6 = &ipcache6,
      .meta = &meta,
      .policy = &policy,
      .rule_meta = &rule_meta,
      .identity_meta = &identity_meta,
      .config = &config,
      .flows = &flows,
      .flow_hists = &flow_hists,
      .services = &services,
      .slots = &slots,
      .lb_scores = &lb_scores,
      .sockhash = [&pinned]() -> absl::StatusOr<std::vector<SockhashEntry>> {
        lib::TypedMap<shunt_sock_key, uint64_t> sh(pinned.sockhash_fd(), SHUNT_MAP_SOCKHASH);
        SHUNT_ASSIGN_OR_RETURN(auto keys, sh.Keys());
        std::vector<SockhashEntry> out;
        for (const auto& k : keys) {
          // Reading a sockhash value from userspace yields the socket cookie.
          auto cookie = sh.Lookup(k);
          out.emplace_back(k, cookie.ok() ? std::optional<uint64_t>(*cookie) : std::nullopt);
        }
        return out;
      },
      .counters = [&pinned] { return lib::ReadCounters(pinned.counters_fd()); }};
  return DumpMap(maps, name);
}

absl::StatusOr<Json> DumpMap(const MapSet& maps, const std::string& name) {
  const std::string pin = ResolveMapName(name);
  if (pin == SHUNT_MAP_ENDPOINTS) return DumpEndpoints(maps);
  if (pin == SHUNT_MAP_ENDPOINT_META) return DumpEndpointMeta(maps);
  if (pin == SHUNT_MAP_IPCACHE) return DumpIpcache(maps);
  if (pin == SHUNT_MAP_IPCACHE6) return DumpIpcache6(maps);
  if (pin == SHUNT_MAP_SOCKHASH) return DumpSockhash(maps);
  if (pin == SHUNT_MAP_COUNTERS) return DumpCounters(maps);
  if (pin == SHUNT_MAP_META) return DumpMeta(maps);
  if (pin == SHUNT_MAP_POLICY) return DumpPolicy(maps);
  if (pin == SHUNT_MAP_IDENTITY_META) return DumpIdentities(maps);
  if (pin == SHUNT_MAP_RULE_META) return DumpRules(maps);
  if (pin == SHUNT_MAP_CONFIG) return DumpConfig(maps);
  if (pin == SHUNT_MAP_FLOWS) return DumpFlows(maps);
  if (pin == SHUNT_MAP_FLOW_HISTS) return DumpFlowHists(maps);
  if (pin == SHUNT_MAP_SERVICES) return DumpServices(maps);
  if (pin == SHUNT_MAP_LB_SCORES) return DumpLbScores(maps);
  return absl::NotFoundError(
      absl::StrCat("no map named '", name,
                   "'; try: meta, endpoints, ep_meta, ipcache, sockhash, counters, "
                   "policy, identities, rules, config, flows, flow_hists, services, lb_scores"));
}

}  // namespace shunt::ctl
