// Typed access to a BPF map through its fd, keyed and valued by the ABI
// structs of include/shunt/abi. Never by name strings at call sites.
#pragma once

#include <bpf/bpf.h>
#include <errno.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::lib {

// What the map writers need of a map: the kernel's (TypedMap) in the
// agent, an in-memory one (lib/memory_map.h) in unit tests.
template <typename K, typename V>
class KvMap {
 public:
  virtual ~KvMap() = default;
  virtual const std::string& name() const = 0;
  // NotFound when absent.
  virtual absl::StatusOr<V> Lookup(const K& key) const = 0;
  // ResourceExhausted when the map is full.
  virtual absl::Status Update(const K& key, const V& value, __u64 flags = BPF_ANY) = 0;
  // Deleting an absent key is not an error.
  virtual absl::Status Delete(const K& key) = 0;
  virtual absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const = 0;
};

template <typename K, typename V>
class TypedMap : public KvMap<K, V> {
 public:
  TypedMap(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}

  int fd() const { return fd_; }
  const std::string& name() const override { return name_; }

  // NotFound when absent.
  absl::StatusOr<V> Lookup(const K& key) const override {
    V value{};
    if (bpf_map_lookup_elem(fd_, &key, &value) != 0) {
      if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(name_, ": no such key"));
      return ErrnoStatus(errno, absl::StrCat("bpf: lookup in ", name_));
    }
    return value;
  }

  // ResourceExhausted when the map is full (E2BIG), so callers can degrade.
  absl::Status Update(const K& key, const V& value, __u64 flags = BPF_ANY) override {
    if (bpf_map_update_elem(fd_, &key, &value, flags) != 0) {
      if (errno == E2BIG)
        return absl::ResourceExhaustedError(absl::StrCat("bpf: map ", name_, " is full"));
      return ErrnoStatus(errno, absl::StrCat("bpf: update in ", name_));
    }
    return absl::OkStatus();
  }

  // Deleting an absent key is not an error: the goal state is reached.
  absl::Status Delete(const K& key) override {
    if (bpf_map_delete_elem(fd_, &key) != 0 && errno != ENOENT)
      return ErrnoStatus(errno, absl::StrCat("bpf: delete in ", name_));
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<K>> Keys() const {
    std::vector<K> keys;
    K cur{}, next{};
    const K* prev = nullptr;
    // Bounded: a map that changes under us cannot make this spin forever.
    for (size_t guard = 0; guard < (1u << 24); ++guard) {
      if (bpf_map_get_next_key(fd_, prev, &next) != 0) {
        if (errno == ENOENT) return keys;
        return ErrnoStatus(errno, absl::StrCat("bpf: iterate ", name_));
      }
      keys.push_back(next);
      cur = next;
      prev = &cur;
    }
    return absl::InternalError(absl::StrCat("bpf: iterate ", name_, ": did not terminate"));
  }

  absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const override {
    std::vector<std::pair<K, V>> out;
    auto keys = Keys();
    if (!keys.ok()) return keys.status();
    out.reserve(keys->size());
    for (const K& k : *keys) {
      auto v = Lookup(k);
      if (absl::IsNotFound(v.status())) continue;  // deleted meanwhile
      if (!v.ok()) return v.status();
      out.emplace_back(k, *v);
    }
    return out;
  }

 private:
  int fd_;
  std::string name_;
};

}  // namespace shunt::lib
