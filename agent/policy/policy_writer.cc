#include "policy_writer.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"

namespace shunt::policy {
namespace {

void CopyName(char* dst, size_t cap, const std::string& src) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, src.data(), std::min(src.size(), cap - 1));
}

void Merge(lib::DiffReport& into, const lib::DiffReport& r) {
  into.written += r.written;
  into.deleted += r.deleted;
  into.unchanged += r.unchanged;
  into.errors.insert(into.errors.end(), r.errors.begin(), r.errors.end());
}

}  // namespace

PolicyWriter::PolicyWriter(const lib::PinnedMaps& maps)
    : policy_(maps.policy()), rule_meta_(maps.rule_meta()), identity_meta_(maps.identity_meta()) {}

absl::Status PolicyWriter::Load() {
  SHUNT_RETURN_IF_ERROR(policy_.Load());
  SHUNT_RETURN_IF_ERROR(rule_meta_.Load());
  return identity_meta_.Load();
}

lib::DiffReport PolicyWriter::Apply(const CompiledPolicy& policy,
                                    const endpoints::IdentityAllocator& allocator,
                                    const std::vector<EntryKey>* changed) {
  lib::DiffReport report;
  const auto& identities = allocator.all();
  // Each name map is rebuilt only when its names changed: one new grant
  // must not cost rewriting-and-comparing 10,000 TrafficTarget names.
  auto identity_meta = [](const endpoints::IdentityAllocator::Key& key) {
    shunt_identity_meta m{};
    CopyName(m.namespace_, sizeof(m.namespace_), key.first);
    CopyName(m.service_account, sizeof(m.service_account), key.second);
    return m;
  };
  auto rule_meta = [](const std::string& name) {
    shunt_rule_meta m{};
    const size_t slash = name.find('/');
    CopyName(m.namespace_, sizeof(m.namespace_), name.substr(0, slash));
    CopyName(m.name, sizeof(m.name), name.substr(slash + 1));
    return m;
  };
  auto note = [&](const absl::StatusOr<bool>& changed, int& counter, const std::string& what) {
    if (!changed.ok())
      report.errors.push_back(absl::StrCat(what, ": ", changed.status().message()));
    else if (*changed)
      ++counter;
    else
      ++report.unchanged;
  };
  if (!identities_applied_) {
    lib::ShadowedMap<__u32, shunt_identity_meta>::Entries ids;
    for (const auto& [key, id] : identities) ids[id] = identity_meta(key);
    lib::DiffReport r =
        identity_meta_.Apply(ids, [](const __u32& id) { return absl::StrCat("identity ", id); });
    identities_applied_ = r.errors.empty();
    Merge(report, r);
  } else if (applied_identities_stamp_ != allocator.stamp() && applied_identities_ != identities) {
    // Only what changed since the last apply: one new service account must
    // not cost rewriting every name.
    const size_t errors_before = report.errors.size();
    absl::flat_hash_set<uint32_t> now_ids;
    for (const auto& [key, id] : identities) now_ids.insert(id);
    for (const auto& [key, id] : applied_identities_) {
      auto it = identities.find(key);
      if ((it == identities.end() || it->second != id) && !now_ids.contains(id))
        note(identity_meta_.Remove(id), report.deleted, absl::StrCat("delete identity ", id));
    }
    for (const auto& [key, id] : identities) {
      auto it = applied_identities_.find(key);
      if (it == applied_identities_.end() || it->second != id)
        note(identity_meta_.Set(id, identity_meta(key)), report.written,
             absl::StrCat("identity ", id));
    }
    // What failed is not in the shadow: the next apply compares every name
    // with it, although the identities will not have changed meanwhile.
    if (report.errors.size() != errors_before) identities_applied_ = false;
  }
  if (identities_applied_ && applied_identities_stamp_ != allocator.stamp()) {
    applied_identities_ = identities;
    applied_identities_stamp_ = allocator.stamp();
  }
  if (!rules_applied_) {
    lib::ShadowedMap<__u32, shunt_rule_meta>::Entries rules;
    for (const auto& [id, name] : policy.rules) rules[id] = rule_meta(name);
    lib::DiffReport r =
        rule_meta_.Apply(rules, [](const __u32& id) { return absl::StrCat("rule ", id); });
    rules_applied_ = r.errors.empty();
    Merge(report, r);
  } else if (applied_rules_stamp_ != policy.rules_stamp && applied_rules_ != policy.rules) {
    const size_t errors_before = report.errors.size();
    for (const auto& [id, name] : applied_rules_)
      if (!policy.rules.count(id))
        note(rule_meta_.Remove(id), report.deleted, absl::StrCat("delete rule ", id));
    for (const auto& [id, name] : policy.rules) {
      auto it = applied_rules_.find(id);
      if (it == applied_rules_.end() || it->second != name)
        note(rule_meta_.Set(id, rule_meta(name)), report.written, absl::StrCat("rule ", id));
    }
    if (report.errors.size() != errors_before) rules_applied_ = false;  // as for identities
  }
  if (rules_applied_ && applied_rules_stamp_ != policy.rules_stamp) {
    applied_rules_ = policy.rules;
    applied_rules_stamp_ = policy.rules_stamp;
  }
  // The policy itself, entry by entry against the shadow: no intermediate
  // copy of the whole map.
  auto abi_key = [](const EntryKey& k) {
    shunt_policy_key key{};
    key.src_identity = k.src;
    key.dst_identity = k.dst;
    key.dport = htons(k.port);
    key.proto = k.proto;
    return key;
  };
  auto describe = [](const EntryKey& k) {
    return absl::StrCat("policy ", k.src, "->", k.dst, " port ", k.port,
                        k.proto == kUdp ? "/udp" : "/tcp");
  };
  const size_t errors_before = report.errors.size();
  auto set = [&](const EntryKey& k, const Grant& g) {
    shunt_policy_value v{};
    v.verdict = g.verdict;
    v.rule_id = g.rule_id;
    auto written = policy_.Set(abi_key(k), v);
    if (!written.ok()) {
      report.errors.push_back(absl::StrCat(describe(k), ": ", written.status().message()));
    } else if (*written) {
      ++report.written;
    } else {
      ++report.unchanged;
    }
  };
  if (changed && entries_in_sync_) {
    // Writes before deletes, as in the full pass: a grant moving from one
    // entry to another is never missing in between.
    for (const EntryKey& k : *changed)
      if (auto it = policy.entries.find(k); it != policy.entries.end()) set(k, it->second);
    for (const EntryKey& k : *changed)
      if (!policy.entries.contains(k))
        note(policy_.Remove(abi_key(k)), report.deleted, "delete " + describe(k));
  } else {
    for (const auto& [k, g] : policy.entries) set(k, g);
    std::vector<EntryKey> stale;
    for (const auto& [key, v] : policy_.shadow()) {
      const EntryKey k{key.src_identity, key.dst_identity, ntohs(key.dport), key.proto};
      if (!policy.entries.contains(k)) stale.push_back(k);
    }
    for (const EntryKey& k : stale)
      note(policy_.Remove(abi_key(k)), report.deleted, "delete " + describe(k));
  }
  // A failed write leaves the map behind the policy: the next apply compares
  // everything again instead of trusting a list of changes.
  entries_in_sync_ = report.errors.size() == errors_before;
  return report;
}

}  // namespace shunt::policy
