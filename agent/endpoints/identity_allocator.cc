#include "identity_allocator.h"

#include "agent/lib/stamp.h"

namespace shunt::endpoints {

void IdentityAllocator::Seed(const Key& key, uint32_t id) {
  if (id < kFirstIdentity || ids_.count(key) || taken_.count(id)) return;
  auto [node, inserted] = ids_.emplace(key, id);
  index_[key] = id;
  by_id_[id] = &node->first;
  taken_.insert(id);
  stamp_ = lib::NextStamp();
  if (id >= next_) {
    for (uint32_t gap = next_; gap < id; ++gap) free_.insert(gap);
    next_ = id + 1;
  } else {
    free_.erase(id);
  }
}

uint32_t IdentityAllocator::Get(const Key& key) {
  if (auto it = index_.find(key); it != index_.end()) return it->second;
  uint32_t id;
  if (!free_.empty()) {
    id = *free_.begin();  // the lowest free number first
    free_.erase(free_.begin());
  } else {
    id = next_++;
  }
  auto [node, inserted] = ids_.emplace(key, id);
  index_[key] = id;
  by_id_[id] = &node->first;
  taken_.insert(id);
  stamp_ = lib::NextStamp();
  return id;
}

void IdentityAllocator::Retain(const std::set<Key>& in_use) {
  for (auto it = ids_.begin(); it != ids_.end();) {
    if (in_use.count(it->first)) {
      ++it;
    } else {
      taken_.erase(it->second);
      free_.insert(it->second);
      index_.erase(it->first);
      by_id_.erase(it->second);
      it = ids_.erase(it);
      stamp_ = lib::NextStamp();
    }
  }
}

}  // namespace shunt::endpoints
