// The SMI policy compiler: TrafficTargets and their route objects become
// policy-map entries keyed by (source identity, destination identity,
// destination port, protocol), exactly as ../shared/SMI.md section 7
// decides where the spec is open:
//  - each TrafficTarget grants (each source) x (its rules); grants add up
//    across TrafficTargets, there are no denies;
//  - a TrafficTarget with only TCPRoute/UDPRoute rules grants L4 on their
//    ports (an empty list = any port, stored as port 0);
//  - with HTTPRouteGroup rules, its TCPRoutes only restrict the ports of the
//    HTTP grant (AND); the HTTP grant is an L7 verdict (the proxy judges each
//    request); UDPRoutes still grant UDP;
//  - an L4 allow of the same (source, destination, port) beats an L7 verdict;
//  - a dangling rule reference grants nothing and is reported;
//  - v1alpha2's destination.port restricts every rule to that port.
// No kernel access: unit-tested directly.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_set.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/model/object_ref.h"
#include "agent/source/file_source.h"
#include "shunt/abi/policy.h"

namespace shunt::policy {

inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;

struct EntryKey {
  uint32_t src = 0, dst = 0;
  uint16_t port = 0;  // host order; 0 = any port
  uint8_t proto = kTcp;
  auto operator<=>(const EntryKey&) const = default;
};

struct Grant {
  uint8_t verdict = 0;  // SHUNT_VERDICT_*
  uint32_t rule_id = 0;
  bool operator==(const Grant&) const = default;
};

struct CompiledPolicy {
  absl::btree_map<EntryKey, Grant> entries;
  std::map<uint32_t, std::string> rules;  // rule id -> TrafficTarget "ns/name"
  std::vector<model::Problem> problems;   // dangling references, empty grants
  absl::flat_hash_set<endpoints::IdentityAllocator::Key> identities;  // every SA the policy names
  int l7_targets = 0;  // TrafficTargets whose HTTP rules the kernel cannot judge
};

// Identities come from `ids` (allocating for SAs no pod uses yet); rule ids
// from `rule_ids`, keyed by (namespace, name) of the TrafficTarget.
CompiledPolicy Compile(const source::Objects& objects, endpoints::IdentityAllocator& ids,
                       endpoints::IdentityAllocator& rule_ids);

// What the kernel decides for one connection, and why, in words.
struct Decision {
  uint8_t verdict = 0;  // 0 = deny
  uint32_t rule_id = 0;
  uint16_t matched_port = 0;  // the entry's port (0 = the any-port entry)
};
Decision Decide(const CompiledPolicy& p, uint32_t src, uint32_t dst, uint16_t port, uint8_t proto);

}  // namespace shunt::policy
