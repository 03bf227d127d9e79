#include "service_writer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"

namespace shunt::services {
namespace {

std::tuple<uint32_t, uint16_t, uint8_t> KeyOf(const shunt_svc_key& k) {
  return {k.vip, k.port, k.proto};
}

shunt_svc_key Key(uint32_t vip_be, uint16_t port, uint8_t proto) {
  shunt_svc_key k{};
  k.vip = vip_be;
  k.port = htons(port);
  k.proto = proto;
  return k;
}

bool SameSlots(const std::vector<shunt_backend>& a, const std::vector<shunt_backend>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0);
}

}  // namespace

ServiceWriter::ServiceWriter(const lib::PinnedMaps& maps)
    : services_(std::make_shared<lib::TypedMap<shunt_svc_key, shunt_svc_value>>(maps.services())),
      slots_(std::make_shared<lib::TypedMap<shunt_slot_key, shunt_backend>>(maps.slots())) {}

absl::Status ServiceWriter::Load() {
  auto svcs = services_->Entries();
  if (!svcs.ok()) return svcs.status();
  auto slots = slots_->Entries();
  if (!slots.ok()) return slots.status();
  std::map<uint32_t, std::map<uint32_t, shunt_backend>> tables;
  for (const auto& [k, b] : *slots) {
    tables[k.table][k.index] = b;
    next_table_ = std::max(next_table_, k.table + 1);
  }
  for (const auto& [k, v] : *svcs) {
    Applied a;
    a.value = v;
    if (v.table == 0) {
      for (uint32_t i = 0; i < v.slots && i < SHUNT_SVC_INLINE; ++i)
        a.slots.push_back(v.inline_slots[i]);
    } else {
      for (const auto& [i, b] : tables[v.table]) a.slots.push_back(b);
    }
    applied_[KeyOf(k)] = std::move(a);
    next_table_ = std::max(next_table_, v.table + 1);
    next_svc_id_ = std::max(next_svc_id_, v.svc_id + 1);
  }
  // Tables no service points at (an agent stopped mid-update): gone.
  for (const auto& [table, entries] : tables) {
    bool used = false;
    for (const auto& [k, a] : applied_) used |= a.value.table == table;
    if (used) continue;
    for (const auto& [i, b] : entries) (void)slots_->Delete(shunt_slot_key{table, i});
  }
  return absl::OkStatus();
}

absl::Status ServiceWriter::WriteTable(uint32_t table, const std::vector<shunt_backend>& slots) {
  for (uint32_t i = 0; i < slots.size(); ++i)
    if (absl::Status s = slots_->Update(shunt_slot_key{table, i}, slots[i]); !s.ok())
      return absl::Status(s.code(), absl::StrCat("slot table ", table, "[", i, "]: ", s.message()));
  return absl::OkStatus();
}

void ServiceWriter::DeleteTable(uint32_t table, size_t n, lib::DiffReport& r) {
  if (table == 0) return;  // the table was inline in its service entry
  for (uint32_t i = 0; i < n; ++i) {
    if (absl::Status s = slots_->Delete(shunt_slot_key{table, i}); !s.ok() && !absl::IsNotFound(s))
      r.errors.push_back(absl::StrCat("delete slot table ", table, "[", i, "]: ", s.message()));
    else
      ++r.deleted;
  }
}

uint32_t ServiceWriter::SvcId(uint32_t vip_be, uint16_t port, uint8_t proto) const {
  auto it = applied_.find(KeyOf(Key(vip_be, port, proto)));
  return it == applied_.end() ? 0 : it->second.value.svc_id;
}

lib::DiffReport ServiceWriter::Apply(const Plan& plan) {
  lib::DiffReport r;
  std::map<std::tuple<uint32_t, uint16_t, uint8_t>, bool> wanted;
  for (const ServiceEntry& e : plan.entries) {
    const shunt_svc_key key = Key(e.vip_be, e.port, e.proto);
    wanted[KeyOf(key)] = true;
    std::vector<shunt_backend> slots;
    slots.reserve(e.slots.size());
    for (uint32_t idx : e.slots) {
      shunt_backend b{};
      b.ip = e.backends[idx].ip_be;
      b.port = htons(e.backends[idx].port);
      slots.push_back(b);
    }
    auto& id = svc_ids_[{e.service, e.port, e.proto}];
    auto it = applied_.find(KeyOf(key));
    const uint8_t flags = e.l7 ? SHUNT_SVC_F_L7 : 0;
    if (it != applied_.end() && SameSlots(it->second.slots, slots) && it->second.value.lb == e.lb &&
        it->second.value.flags == flags) {
      ++r.unchanged;
      if (id == 0) id = it->second.value.svc_id;
      continue;
    }
    if (id == 0) id = it != applied_.end() ? it->second.value.svc_id : next_svc_id_++;
    // New table first, then the entry, then the old table: a connect()
    // always finds a whole table. Small tables go inside the entry, which
    // the kernel replaces in one piece.
    const bool inline_table = slots.size() <= SHUNT_SVC_INLINE;
    const uint32_t table = inline_table ? 0 : next_table_++;
    if (absl::Status s = inline_table ? absl::OkStatus() : WriteTable(table, slots); !s.ok()) {
      // Full (or an error): the service keeps its old table, and the new
      // one's written part goes.
      r.errors.push_back(absl::StrCat(e.service, " port ", e.port, ": ", s.message()));
      lib::DiffReport ignore;
      DeleteTable(table, slots.size(), ignore);
      continue;
    }
    shunt_svc_value v{};
    v.table = table;
    v.slots = static_cast<uint32_t>(slots.size());
    v.svc_id = id;
    v.lb = e.lb;
    v.flags = flags;
    if (inline_table) std::copy(slots.begin(), slots.end(), v.inline_slots);
    if (absl::Status s = services_->Update(key, v); !s.ok()) {
      r.errors.push_back(
          absl::StrCat(e.service, " ", lib::Ipv4String(e.vip_be), ":", e.port, ": ", s.message()));
      lib::DiffReport ignore;
      DeleteTable(table, slots.size(), ignore);
      continue;
    }
    r.written += 1 + (inline_table ? 0 : static_cast<int>(slots.size()));
    if (it != applied_.end()) {
      DeleteTable(it->second.value.table, it->second.slots.size(), r);
      it->second = Applied{v, std::move(slots)};
    } else {
      applied_[KeyOf(key)] = Applied{v, std::move(slots)};
    }
  }
  for (auto it = applied_.begin(); it != applied_.end();) {
    if (wanted.count(it->first)) {
      ++it;
      continue;
    }
    shunt_svc_key key{};
    std::tie(key.vip, key.port, key.proto) = it->first;
    if (absl::Status s = services_->Delete(key); !s.ok() && !absl::IsNotFound(s)) {
      r.errors.push_back(absl::StrCat("delete service ", lib::Ipv4String(key.vip), ":",
                                      ntohs(key.port), ": ", s.message()));
      ++it;
      continue;
    }
    ++r.deleted;
    DeleteTable(it->second.value.table, it->second.slots.size(), r);
    it = applied_.erase(it);
  }
  return r;
}

}  // namespace shunt::services
