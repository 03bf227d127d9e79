#include "endpoint_maps.h"

#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"

namespace shunt::endpoints {
namespace {

template <typename T>
bool SameBytes(const T& a, const T& b) {
  return std::memcmp(&a, &b, sizeof(T)) == 0;
}

std::string Ip(uint32_t be) {
  const auto* b = reinterpret_cast<const unsigned char*>(&be);
  return absl::StrCat(b[0], ".", b[1], ".", b[2], ".", b[3]);
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

ApplyReport ApplyPlan(const Plan& plan, EndpointMaps& maps) {
  ApplyReport r;
  auto cur_ipc = maps.ReadIpcache();
  auto cur_eps = maps.ReadEndpoints();
  if (!cur_ipc.ok() || !cur_eps.ok()) {
    r.errors.push_back(
        std::string((!cur_ipc.ok() ? cur_ipc.status() : cur_eps.status()).message()));
    return r;
  }
  auto note = [&](const absl::Status& s, int& counter) {
    if (s.ok()) {
      ++counter;
    } else {
      r.errors.push_back(std::string(s.message()));
    }
  };
  // Endpoints first: a pod whose endpoint cannot be written (map full) must
  // not be announced as a local peer, or its clients would enter the
  // sockhash and miss on every send.
  std::set<uint32_t> not_local;
  for (const auto& [cookie, want] : plan.endpoints) {
    auto it = cur_eps->find(cookie);
    if (it != cur_eps->end() && SameBytes(it->second.ep, want.ep) &&
        SameBytes(it->second.meta, want.meta)) {
      ++r.unchanged;
      continue;
    }
    absl::Status s = maps.PutEndpoint(cookie, want);
    if (!s.ok()) {
      s = absl::Status(s.code(), absl::StrCat("endpoint ", want.meta.namespace_, "/",
                                              want.meta.name, ": ", s.message()));
      not_local.insert(want.ep.ip4);
    }
    note(s, r.written);
  }
  for (const auto& [ip, planned] : plan.ipcache) {
    shunt_ipcache_entry want = planned;
    if (not_local.count(ip)) want.flags &= ~SHUNT_IPC_F_LOCAL;
    auto it = cur_ipc->find(ip);
    if (it != cur_ipc->end() && SameBytes(it->second, want)) {
      ++r.unchanged;
      continue;
    }
    absl::Status s = maps.PutIpcache(ip, want);
    if (!s.ok()) s = absl::Status(s.code(), absl::StrCat("ipcache ", Ip(ip), ": ", s.message()));
    note(s, r.written);
  }
  for (const auto& [cookie, have] : *cur_eps) {
    if (plan.endpoints.count(cookie)) continue;
    absl::Status s = maps.DeleteEndpoint(cookie);
    if (!s.ok())
      s = absl::Status(s.code(), absl::StrCat("delete endpoint ", cookie, ": ", s.message()));
    note(s, r.deleted);
  }
  for (const auto& [ip, have] : *cur_ipc) {
    if (plan.ipcache.count(ip)) continue;
    absl::Status s = maps.DeleteIpcache(ip);
    if (!s.ok())
      s = absl::Status(s.code(), absl::StrCat("delete ipcache ", Ip(ip), ": ", s.message()));
    note(s, r.deleted);
  }
  return r;
}

}  // namespace shunt::endpoints
