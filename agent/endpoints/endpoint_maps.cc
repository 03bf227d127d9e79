#include "endpoint_maps.h"

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"
#include "agent/lib/status_macros.h"

namespace shunt::endpoints {
namespace {

template <typename T>
bool SameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

std::string Ip(uint32_t be) { return lib::Ipv4String(be); }
std::string Ip(const Ip6& a) { return lib::Ipv6String(a.data()); }

shunt_ip6 ToKey(const Ip6& a) {
  shunt_ip6 k;
  std::memcpy(&k, a.data(), sizeof(k));
  return k;
}

// Writes what differs in one ipcache map (either family) from `planned`
// (`writes`), or deletes what is not planned (!`writes`); `not_local` are
// addresses of pods whose endpoint could not be written.
template <typename Key, typename Put, typename Delete>
void SyncIpcache(bool writes, const std::map<Key, shunt_ipcache_entry>& planned,
                 const std::map<Key, shunt_ipcache_entry>& current, const std::set<Key>& not_local,
                 Put put, Delete del, ApplyReport& r) {
  auto note = [&](const absl::Status& s, int& counter) {
    if (s.ok()) {
      ++counter;
    } else {
      r.errors.push_back(std::string(s.message()));
    }
  };
  for (const auto& [ip, entry] : planned) {
    if (!writes) break;
    shunt_ipcache_entry want = entry;
    if (not_local.count(ip)) want.flags &= ~SHUNT_IPC_F_LOCAL;
    auto it = current.find(ip);
    if (it != current.end() && SameBytes(it->second, want)) {
      ++r.unchanged;
      continue;
    }
    absl::Status s = put(ip, want);
    if (!s.ok()) s = absl::Status(s.code(), absl::StrCat("ipcache ", Ip(ip), ": ", s.message()));
    note(s, r.written);
  }
  for (const auto& [ip, have] : current) {
    if (writes) break;
    if (planned.count(ip)) continue;
    absl::Status s = del(ip);
    if (!s.ok())
      s = absl::Status(s.code(), absl::StrCat("delete ipcache ", Ip(ip), ": ", s.message()));
    note(s, r.deleted);
  }
}

}  // namespace

absl::StatusOr<std::map<uint64_t, EndpointEntry>> BpfEndpointMaps::ReadEndpoints() {
  std::map<uint64_t, EndpointEntry> out;
  SHUNT_ASSIGN_OR_RETURN(auto eps, maps_->endpoints().Entries());
  for (const auto& [k, v] : eps) out[k].ep = v;
  SHUNT_ASSIGN_OR_RETURN(auto metas, maps_->endpoint_meta().Entries());
  for (const auto& [k, v] : metas) out[k].meta = v;  // a meta without endpoint is stale too
  return out;
}

absl::StatusOr<std::map<uint32_t, shunt_ipcache_entry>> BpfEndpointMaps::ReadIpcache() {
  SHUNT_ASSIGN_OR_RETURN(auto entries, maps_->ipcache().Entries());
  return std::map<uint32_t, shunt_ipcache_entry>(entries.begin(), entries.end());
}

absl::Status BpfEndpointMaps::PutEndpoint(uint64_t cookie, const EndpointEntry& e) {
  // Names first: the CLI must never see an endpoint it cannot name.
  SHUNT_RETURN_IF_ERROR(maps_->endpoint_meta().Update(cookie, e.meta));
  return maps_->endpoints().Update(cookie, e.ep);
}

absl::Status BpfEndpointMaps::DeleteEndpoint(uint64_t cookie) {
  SHUNT_RETURN_IF_ERROR(maps_->endpoints().Delete(cookie));
  return maps_->endpoint_meta().Delete(cookie);
}

absl::Status BpfEndpointMaps::PutIpcache(uint32_t ip_be, const shunt_ipcache_entry& e) {
  return maps_->ipcache().Update(ip_be, e);
}

absl::Status BpfEndpointMaps::DeleteIpcache(uint32_t ip_be) {
  return maps_->ipcache().Delete(ip_be);
}

absl::StatusOr<std::map<Ip6, shunt_ipcache_entry>> BpfEndpointMaps::ReadIpcache6() {
  SHUNT_ASSIGN_OR_RETURN(auto entries, maps_->ipcache6().Entries());
  std::map<Ip6, shunt_ipcache_entry> out;
  for (const auto& [k, v] : entries) {
    Ip6 a;
    std::memcpy(a.data(), &k, a.size());
    out[a] = v;
  }
  return out;
}

absl::Status BpfEndpointMaps::PutIpcache6(const Ip6& ip, const shunt_ipcache_entry& e) {
  return maps_->ipcache6().Update(ToKey(ip), e);
}

absl::Status BpfEndpointMaps::DeleteIpcache6(const Ip6& ip) {
  return maps_->ipcache6().Delete(ToKey(ip));
}

ApplyReport ApplyPlan(const Plan& plan, EndpointMaps& maps) {
  ApplyReport r;
  auto cur_ipc = maps.ReadIpcache();
  auto cur_ipc6 = maps.ReadIpcache6();
  auto cur_eps = maps.ReadEndpoints();
  for (const absl::Status& s : {cur_ipc.status(), cur_ipc6.status(), cur_eps.status()}) {
    if (!s.ok()) {
      r.errors.push_back(std::string(s.message()));
      return r;
    }
  }
  // Endpoints first: a pod whose endpoint cannot be written (map full) must
  // not be announced as a local peer, or its clients would enter the
  // sockhash and miss on every send.
  std::set<uint32_t> not_local;
  std::set<Ip6> not_local6;
  for (const auto& [cookie, want] : plan.endpoints) {
    auto it = cur_eps->find(cookie);
    if (it != cur_eps->end() && SameBytes(it->second.ep, want.ep) &&
        SameBytes(it->second.meta, want.meta)) {
      ++r.unchanged;
      continue;
    }
    absl::Status s = maps.PutEndpoint(cookie, want);
    if (s.ok()) {
      ++r.written;
      continue;
    }
    r.errors.push_back(
        absl::StrCat("endpoint ", want.meta.namespace_, "/", want.meta.name, ": ", s.message()));
    not_local.insert(want.ep.ip4);
    Ip6 ip6;
    std::memcpy(ip6.data(), &want.ep.ip6, ip6.size());
    not_local6.insert(ip6);
  }
  auto put4 = [&](uint32_t ip, const shunt_ipcache_entry& e) { return maps.PutIpcache(ip, e); };
  auto del4 = [&](uint32_t ip) { return maps.DeleteIpcache(ip); };
  auto put6 = [&](const Ip6& ip, const shunt_ipcache_entry& e) { return maps.PutIpcache6(ip, e); };
  auto del6 = [&](const Ip6& ip) { return maps.DeleteIpcache6(ip); };
  SyncIpcache(true, plan.ipcache, *cur_ipc, not_local, put4, del4, r);
  SyncIpcache(true, plan.ipcache6, *cur_ipc6, not_local6, put6, del6, r);
  for (const auto& [cookie, have] : *cur_eps) {
    if (plan.endpoints.count(cookie)) continue;
    absl::Status s = maps.DeleteEndpoint(cookie);
    if (s.ok()) {
      ++r.deleted;
      continue;
    }
    r.errors.push_back(absl::StrCat("delete endpoint ", cookie, ": ", s.message()));
  }
  SyncIpcache(false, plan.ipcache, *cur_ipc, not_local, put4, del4, r);
  SyncIpcache(false, plan.ipcache6, *cur_ipc6, not_local6, put6, del6, r);
  return r;
}

}  // namespace shunt::endpoints
