// A BPF hash map driven to a desired state by differences, with a shadow
// copy of what it holds, so an update costs one syscall per changed entry
// (not a read of the whole map) and there is never a window in which an
// unchanged entry is missing.
#pragma once

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/typed_map.h"

namespace shunt::lib {

// Orders ABI structs by their bytes (explicit padding is always zero).
template <typename T>
struct BytesLess {
  bool operator()(const T& a, const T& b) const { return std::memcmp(&a, &b, sizeof(T)) < 0; }
};

struct DiffReport {
  int written = 0, deleted = 0, unchanged = 0;
  std::vector<std::string> errors;
};

template <typename K, typename V>
class ShadowedMap {
 public:
  using Entries = absl::btree_map<K, V, BytesLess<K>>;

  explicit ShadowedMap(TypedMap<K, V> map)
      : map_(std::make_shared<TypedMap<K, V>>(std::move(map))) {}
  explicit ShadowedMap(std::shared_ptr<KvMap<K, V>> map) : map_(std::move(map)) {}

  // Reads what the kernel map holds now (e.g. pins from an earlier agent).
  absl::Status Load() {
    auto entries = map_->Entries();
    if (!entries.ok()) return entries.status();
    shadow_.clear();
    for (const auto& [k, v] : *entries) shadow_[k] = v;
    return absl::OkStatus();
  }

  // Writes new and changed entries first, then deletes the ones not wanted.
  // A failed write is reported and the rest still applies; `describe` names
  // a key in error messages.
  DiffReport Apply(const Entries& want, const std::function<std::string(const K&)>& describe) {
    DiffReport r;
    for (const auto& [k, v] : want) {
      auto it = shadow_.find(k);
      if (it != shadow_.end() && std::memcmp(&it->second, &v, sizeof(V)) == 0) {
        ++r.unchanged;
        continue;
      }
      if (absl::Status s = map_->Update(k, v); !s.ok()) {
        r.errors.push_back(absl::StrCat(describe(k), ": ", s.message()));
        continue;
      }
      shadow_[k] = v;
      ++r.written;
    }
    for (auto it = shadow_.begin(); it != shadow_.end();) {
      if (want.count(it->first)) {
        ++it;
        continue;
      }
      if (absl::Status s = map_->Delete(it->first); !s.ok()) {
        r.errors.push_back(absl::StrCat("delete ", describe(it->first), ": ", s.message()));
        ++it;
        continue;
      }
      it = shadow_.erase(it);
      ++r.deleted;
    }
    return r;
  }

  // Targeted changes, for callers that know exactly what changed. True if
  // the kernel map was touched (an equal entry costs no syscall).
  absl::StatusOr<bool> Set(const K& k, const V& v) {
    auto it = shadow_.find(k);
    if (it != shadow_.end() && std::memcmp(&it->second, &v, sizeof(V)) == 0) return false;
    if (absl::Status s = map_->Update(k, v); !s.ok()) return s;
    shadow_[k] = v;
    return true;
  }
  absl::StatusOr<bool> Remove(const K& k) {
    if (!shadow_.count(k)) return false;
    if (absl::Status s = map_->Delete(k); !s.ok()) return s;
    shadow_.erase(k);
    return true;
  }

  const Entries& shadow() const { return shadow_; }

 private:
  std::shared_ptr<KvMap<K, V>> map_;
  Entries shadow_;
};

}  // namespace shunt::lib
