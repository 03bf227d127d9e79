#include "policy_writer.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"

namespace shunt::policy {
namespace {

void CopyName(char* dst, size_t cap, const std::string& src) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, src.data(), std::min(src.size(), cap - 1));
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
  // True if `changed` is not an error.
  auto note = [&](const absl::StatusOr<bool>& changed, int& counter, const std::string& what) {
    if (!changed.ok()) {
      report.errors.push_back(absl::StrCat(what, ": ", changed.status().message()));
      return false;
    }
    ++(*changed ? counter : report.unchanged);
    return true;
  };
  // Names the policy may use are written now, before the entries; names no
  // longer used go after the entries that used them (at the end).
  bool identities_ok = true, rules_ok = true;
  std::vector<__u32> old_identities, old_rules;
  if (!identities_applied_) {
    // Compared whole with the shadow: the first apply, or one after a failure.
    for (const auto& [key, id] : identities)
      identities_ok &= note(identity_meta_.Set(id, identity_meta(key)), report.written,
                            absl::StrCat("identity ", id));
    for (const auto& [id, m] : identity_meta_.shadow())
      if (!allocator.KeyOf(id)) old_identities.push_back(id);
  } else if (applied_identities_stamp_ != allocator.stamp() && applied_identities_ != identities) {
    // Only what changed since the last apply: one new service account must
    // not cost rewriting every name.
    for (const auto& [key, id] : applied_identities_) {
      auto it = identities.find(key);
      if ((it == identities.end() || it->second != id) && !allocator.KeyOf(id))
        old_identities.push_back(id);
    }
    for (const auto& [key, id] : identities) {
      auto it = applied_identities_.find(key);
      if (it == applied_identities_.end() || it->second != id)
        identities_ok &= note(identity_meta_.Set(id, identity_meta(key)), report.written,
                              absl::StrCat("identity ", id));
    }
  }
  if (!rules_applied_) {
    for (const auto& [id, name] : policy.rules)
      rules_ok &=
          note(rule_meta_.Set(id, rule_meta(name)), report.written, absl::StrCat("rule ", id));
    for (const auto& [id, m] : rule_meta_.shadow())
      if (!policy.rules.count(id)) old_rules.push_back(id);
  } else if (applied_rules_stamp_ != policy.rules_stamp && applied_rules_ != policy.rules) {
    for (const auto& [id, name] : applied_rules_)
      if (!policy.rules.count(id)) old_rules.push_back(id);
    for (const auto& [id, name] : policy.rules) {
      auto it = applied_rules_.find(id);
      if (it == applied_rules_.end() || it->second != name)
        rules_ok &=
            note(rule_meta_.Set(id, rule_meta(name)), report.written, absl::StrCat("rule ", id));
    }
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
  // Names no entry uses any more, now that those entries are gone. If some
  // entry failed to change, it may still use one: those names go with a
  // later apply instead.
  if (entries_in_sync_) {
    for (__u32 id : old_identities)
      identities_ok &=
          note(identity_meta_.Remove(id), report.deleted, absl::StrCat("delete identity ", id));
    for (__u32 id : old_rules)
      rules_ok &= note(rule_meta_.Remove(id), report.deleted, absl::StrCat("delete rule ", id));
  } else {
    identities_ok &= old_identities.empty();
    rules_ok &= old_rules.empty();
  }
  // A name that failed to change is not as the shadow says it should be:
  // the next apply compares every name again, although the names will not
  // have changed meanwhile.
  identities_applied_ = identities_ok;
  rules_applied_ = rules_ok;
  if (identities_applied_ && applied_identities_stamp_ != allocator.stamp()) {
    applied_identities_ = identities;
    applied_identities_stamp_ = allocator.stamp();
  }
  if (rules_applied_ && applied_rules_stamp_ != policy.rules_stamp) {
    applied_rules_ = policy.rules;
    applied_rules_stamp_ = policy.rules_stamp;
  }
  return report;
}

}  // namespace shunt::policy
