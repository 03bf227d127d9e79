// Small numbers for (namespace, serviceaccount) pairs. Node-local: they never
// leave the node (DESIGN.md), so no cluster-wide coordination is needed.
// Numbers below kFirstIdentity are reserved for well-known peers.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace shunt::endpoints {

inline constexpr uint32_t kIdentityUnknown = 0;
inline constexpr uint32_t kIdentityHost = 1;
inline constexpr uint32_t kIdentityWorld = 2;
inline constexpr uint32_t kFirstIdentity = 256;

class IdentityAllocator {
 public:
  using Key = std::pair<std::string, std::string>;  // namespace, service account

  // Re-adopts a number from pinned state so identities survive agent restarts.
  // Ignored if the number or the key is already taken.
  void Seed(const Key& key, uint32_t id);

  // The pair's number, allocating the lowest free one if new.
  uint32_t Get(const Key& key);

  // Forgets every pair not in `in_use`, freeing their numbers for reuse.
  void Retain(const std::set<Key>& in_use);

  // The pair a number was given to; nullptr if none.
  const Key* KeyOf(uint32_t id) const {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : it->second;
  }

  size_t size() const { return ids_.size(); }
  // Changes whenever a number is given or freed (lib/stamp.h).
  uint64_t stamp() const { return stamp_; }
  const std::map<Key, uint32_t>& all() const { return ids_; }

 private:
  std::map<Key, uint32_t> ids_;                      // ordered, for all()
  absl::flat_hash_map<Key, uint32_t> index_;         // the same, for Get's hot path
  absl::flat_hash_map<uint32_t, const Key*> by_id_;  // into ids_ (stable node keys)
  std::set<uint32_t> taken_;
  // Numbers below next_ that are free again; Get takes the lowest of them
  // first, else next_: O(log n) per allocation, not a scan of taken_.
  std::set<uint32_t> free_;
  uint32_t next_ = kFirstIdentity;
  uint64_t stamp_ = 0;
};

}  // namespace shunt::endpoints
