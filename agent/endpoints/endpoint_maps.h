// The narrow interface through which endpoint planning reaches the kernel
// maps, and the diff that applies a Plan through it. The real implementation
// wraps the pinned maps; tests use an in-memory one.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/endpoints/endpoint_plan.h"
#include "agent/lib/pinned_maps.h"

namespace shunt::endpoints {

class EndpointMaps {
 public:
  virtual ~EndpointMaps() = default;
  virtual absl::StatusOr<std::map<uint64_t, EndpointEntry>> ReadEndpoints() = 0;
  virtual absl::StatusOr<std::map<uint32_t, shunt_ipcache_entry>> ReadIpcache() = 0;
  // ResourceExhausted when the map is full.
  virtual absl::Status PutEndpoint(uint64_t cookie, const EndpointEntry& e) = 0;
  virtual absl::Status DeleteEndpoint(uint64_t cookie) = 0;
  virtual absl::Status PutIpcache(uint32_t ip_be, const shunt_ipcache_entry& e) = 0;
  virtual absl::Status DeleteIpcache(uint32_t ip_be) = 0;
  virtual absl::StatusOr<std::map<Ip6, shunt_ipcache_entry>> ReadIpcache6() = 0;
  virtual absl::Status PutIpcache6(const Ip6& ip, const shunt_ipcache_entry& e) = 0;
  virtual absl::Status DeleteIpcache6(const Ip6& ip) = 0;
};

class BpfEndpointMaps : public EndpointMaps {
 public:
  explicit BpfEndpointMaps(const lib::PinnedMaps* maps) : maps_(maps) {}
  absl::StatusOr<std::map<uint64_t, EndpointEntry>> ReadEndpoints() override;
  absl::StatusOr<std::map<uint32_t, shunt_ipcache_entry>> ReadIpcache() override;
  absl::Status PutEndpoint(uint64_t cookie, const EndpointEntry& e) override;
  absl::Status DeleteEndpoint(uint64_t cookie) override;
  absl::Status PutIpcache(uint32_t ip_be, const shunt_ipcache_entry& e) override;
  absl::Status DeleteIpcache(uint32_t ip_be) override;
  absl::StatusOr<std::map<Ip6, shunt_ipcache_entry>> ReadIpcache6() override;
  absl::Status PutIpcache6(const Ip6& ip, const shunt_ipcache_entry& e) override;
  absl::Status DeleteIpcache6(const Ip6& ip) override;

 private:
  const lib::PinnedMaps* maps_;
};

struct ApplyReport {
  int written = 0;
  int deleted = 0;
  int unchanged = 0;
  std::vector<std::string> errors;  // each write that failed; the rest still applied
};

// Brings the maps to `plan` by writing only what differs: entries that stay
// the same are never touched, so there is no window without them. Endpoints
// are written before the ipcache entries that announce them as local peers;
// removals go the same way (a stale LOCAL flag only costs a miss).
ApplyReport ApplyPlan(const Plan& plan, EndpointMaps& maps);

}  // namespace shunt::endpoints
