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

lib::DiffReport PolicyWriter::Apply(
    const CompiledPolicy& policy,
    const std::map<endpoints::IdentityAllocator::Key, uint32_t>& identities) {
  lib::DiffReport report;
  // Each name map is rebuilt only when its names changed: one new grant
  // must not cost rewriting-and-comparing 10,000 TrafficTarget names.
  if (!identities_applied_ || applied_identities_ != identities) {
    lib::ShadowedMap<__u32, shunt_identity_meta>::Entries ids;
    for (const auto& [key, id] : identities) {
      shunt_identity_meta m{};
      CopyName(m.namespace_, sizeof(m.namespace_), key.first);
      CopyName(m.service_account, sizeof(m.service_account), key.second);
      ids[id] = m;
    }
    lib::DiffReport r =
        identity_meta_.Apply(ids, [](const __u32& id) { return absl::StrCat("identity ", id); });
    identities_applied_ = r.errors.empty();
    if (identities_applied_) applied_identities_ = identities;
    Merge(report, r);
  }
  if (!rules_applied_ || applied_rules_ != policy.rules) {
    lib::ShadowedMap<__u32, shunt_rule_meta>::Entries rules;
    for (const auto& [id, name] : policy.rules) {
      shunt_rule_meta m{};
      const size_t slash = name.find('/');
      CopyName(m.namespace_, sizeof(m.namespace_), name.substr(0, slash));
      CopyName(m.name, sizeof(m.name), name.substr(slash + 1));
      rules[id] = m;
    }
    lib::DiffReport r = rule_meta_.Apply(rules, [](const __u32& id) { return absl::StrCat("rule ", id); });
    rules_applied_ = r.errors.empty();
    if (rules_applied_) applied_rules_ = policy.rules;
    Merge(report, r);
  }
  lib::ShadowedMap<shunt_policy_key, shunt_policy_value>::Entries entries;
  for (const auto& [k, g] : policy.entries) {
    shunt_policy_key key{};
    key.src_identity = k.src;
    key.dst_identity = k.dst;
    key.dport = htons(k.port);
    key.proto = k.proto;
    shunt_policy_value v{};
    v.verdict = g.verdict;
    v.rule_id = g.rule_id;
    entries[key] = v;
  }
  Merge(report, policy_.Apply(entries, [](const shunt_policy_key& k) {
    return absl::StrCat("policy ", k.src_identity, "->", k.dst_identity, " port ", ntohs(k.dport),
                        k.proto == kUdp ? "/udp" : "/tcp");
  }));
  return report;
}

}  // namespace shunt::policy
