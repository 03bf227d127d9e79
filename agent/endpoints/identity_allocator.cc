#include "identity_allocator.h"

namespace shunt::endpoints {

void IdentityAllocator::Seed(const Key& key, uint32_t id) {
  if (id < kFirstIdentity || ids_.count(key) || taken_.count(id)) return;
  ids_[key] = id;
  taken_.insert(id);
}

uint32_t IdentityAllocator::Get(const Key& key) {
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  uint32_t id = kFirstIdentity;
  for (uint32_t t : taken_) {  // ordered: first gap wins
    if (t < id) continue;
    if (t != id) break;
    ++id;
  }
  ids_[key] = id;
  taken_.insert(id);
  return id;
}

void IdentityAllocator::Retain(const std::set<Key>& in_use) {
  for (auto it = ids_.begin(); it != ids_.end();) {
    if (in_use.count(it->first)) {
      ++it;
    } else {
      taken_.erase(it->second);
      it = ids_.erase(it);
    }
  }
}

}  // namespace shunt::endpoints
