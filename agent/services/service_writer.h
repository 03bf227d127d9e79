// Brings the kernel's service maps to a Plan without a window in which a
// service address balances to a half-written table: a changed service gets
// a new slot table (new id), written completely before the service entry
// points at it; the old table is deleted afterwards. Unchanged services
// cost nothing.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/shadowed_map.h"
#include "agent/services/service_plan.h"
#include "shunt/abi/service.h"

namespace shunt::services {

class ServiceWriter {
 public:
  using ServiceMap = lib::KvMap<shunt_svc_key, shunt_svc_value>;
  using SlotMap = lib::KvMap<shunt_slot_key, shunt_backend>;
  explicit ServiceWriter(const lib::PinnedMaps& maps);
  // Any maps: unit tests pass in-memory ones (lib/memory_map.h).
  ServiceWriter(std::shared_ptr<ServiceMap> services, std::shared_ptr<SlotMap> slots)
      : services_(std::move(services)), slots_(std::move(slots)) {}

  // Reads what the maps hold (an earlier agent's tables), so the first
  // Apply writes only differences too.
  absl::Status Load();

  lib::DiffReport Apply(const Plan& plan);

  size_t services() const { return applied_.size(); }
  // The kernel's id of a service address in force (as in its balancing
  // choices), 0 if none.
  uint32_t SvcId(uint32_t vip_be, uint16_t port, uint8_t proto) const;

 private:
  struct Applied {
    shunt_svc_value value{};
    std::vector<shunt_backend> slots;  // the table's contents, in slot order
  };
  absl::Status WriteTable(uint32_t table, const std::vector<shunt_backend>& slots);
  void DeleteTable(uint32_t table, size_t n, lib::DiffReport& r);

  std::shared_ptr<ServiceMap> services_;
  std::shared_ptr<SlotMap> slots_;
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, Applied>
      applied_;  // by (vip, port, proto), as keys
  uint32_t next_table_ = 1;
  uint32_t next_svc_id_ = 1;
  std::map<std::tuple<std::string, uint16_t, uint8_t>, uint32_t>
      svc_ids_;  // (service, port, proto) -> id
};

}  // namespace shunt::services
