// Writes a compiled policy into the pinned maps as differences (no flush and
// refill: an entry that stays the same is never touched), plus the names
// shuntctl shows for rule ids and identities.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/shadowed_map.h"
#include "agent/policy/compiler.h"

namespace shunt::policy {

class PolicyWriter {
 public:
  using PolicyMap = lib::KvMap<shunt_policy_key, shunt_policy_value>;
  using RuleMetaMap = lib::KvMap<__u32, shunt_rule_meta>;
  using IdentityMetaMap = lib::KvMap<__u32, shunt_identity_meta>;
  explicit PolicyWriter(const lib::PinnedMaps& maps);
  // Any maps: unit tests pass in-memory ones (lib/memory_map.h).
  PolicyWriter(std::shared_ptr<PolicyMap> policy, std::shared_ptr<RuleMetaMap> rule_meta,
               std::shared_ptr<IdentityMetaMap> identity_meta)
      : policy_(std::move(policy)),
        rule_meta_(std::move(rule_meta)),
        identity_meta_(std::move(identity_meta)) {}

  // Reads what the maps hold (an earlier agent's state) so the first Apply
  // is a difference too.
  absl::Status Load();

  // Names first, then the policy, then the names no entry uses any more, so
  // the CLI can always name what it sees. A failed write is reported in the
  // DiffReport, the rest still applies, and the next Apply repairs it.
  // With `changed` (PolicyCompiler::TakeChanges() since the policy last
  // passed here), only those entries are touched; without it, or when an
  // earlier apply failed part-way, every entry is compared with the shadow.
  lib::DiffReport Apply(const CompiledPolicy& policy,
                        const endpoints::IdentityAllocator& identities,
                        const std::vector<EntryKey>* changed = nullptr);

  size_t entries() const { return policy_.shadow().size(); }

 private:
  lib::ShadowedMap<shunt_policy_key, shunt_policy_value> policy_;
  lib::ShadowedMap<__u32, shunt_rule_meta> rule_meta_;
  lib::ShadowedMap<__u32, shunt_identity_meta> identity_meta_;
  // What the name maps were last brought to: unchanged names (the common
  // case when one grant changes) cost nothing.
  std::map<uint32_t, std::string> applied_rules_;
  std::map<endpoints::IdentityAllocator::Key, uint32_t> applied_identities_;
  bool identities_applied_ = false, rules_applied_ = false;
  uint64_t applied_identities_stamp_ = 0, applied_rules_stamp_ = 0;
  bool entries_in_sync_ = false;  // the map holds exactly the last policy applied
};

}  // namespace shunt::policy
