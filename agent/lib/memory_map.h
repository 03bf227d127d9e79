// An in-memory KvMap for unit tests of the map writers: it keeps a journal
// of every write and delete in order (so tests can check that a writer
// never points at something it has not written yet), can be made full,
// and can be told to fail chosen operations.
#pragma once

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/shadowed_map.h"
#include "agent/lib/typed_map.h"

namespace shunt::lib {

template <typename K, typename V>
class MemoryMap : public KvMap<K, V> {
 public:
  struct Op {
    bool update;  // false: delete
    K key;
    V value;  // zero for deletes
  };

  explicit MemoryMap(std::string name, size_t max_entries = 1 << 20)
      : name_(std::move(name)), max_entries_(max_entries) {}

  const std::string& name() const override { return name_; }
  absl::StatusOr<V> Lookup(const K& key) const override {
    auto it = entries_.find(key);
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat(name_, ": no such key"));
    return it->second;
  }
  absl::Status Update(const K& key, const V& value, __u64 = BPF_ANY) override {
    if (fail_ && fail_(true, key)) return absl::UnavailableError(absl::StrCat(name_, ": injected"));
    if (!entries_.count(key) && entries_.size() >= max_entries_)
      return absl::ResourceExhaustedError(absl::StrCat("bpf: map ", name_, " is full"));
    entries_[key] = value;
    journal_.push_back({true, key, value});
    return absl::OkStatus();
  }
  absl::Status Delete(const K& key) override {
    if (fail_ && fail_(false, key))
      return absl::UnavailableError(absl::StrCat(name_, ": injected"));
    if (entries_.erase(key) > 0) journal_.push_back({false, key, V{}});
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::pair<K, V>>> Entries() const override {
    if (fail_reads_)
      return absl::PermissionDeniedError(absl::StrCat("bpf: iterate ", name_, ": injected"));
    return std::vector<std::pair<K, V>>(entries_.begin(), entries_.end());
  }
  // Makes Entries() fail (a map the agent cannot read).
  void FailReads(bool fail) { fail_reads_ = fail; }

  // Makes Update (update == true) or Delete fail for the keys `fail` picks.
  void FailWhen(std::function<bool(bool update, const K&)> fail) { fail_ = std::move(fail); }
  void set_max_entries(size_t n) { max_entries_ = n; }
  size_t size() const { return entries_.size(); }
  const std::map<K, V, BytesLess<K>>& entries() const { return entries_; }
  const std::vector<Op>& journal() const { return journal_; }
  void ClearJournal() { journal_.clear(); }

 private:
  std::string name_;
  size_t max_entries_;
  std::map<K, V, BytesLess<K>> entries_;
  std::vector<Op> journal_;
  std::function<bool(bool, const K&)> fail_;
  bool fail_reads_ = false;
};

}  // namespace shunt::lib
