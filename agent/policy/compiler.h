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
// Compiling is incremental (PolicyCompiler): each TrafficTarget's grants are
// kept, and an update recompiles only the TrafficTargets that changed or
// whose routes changed, so one edit among 10,000 costs one recompile.
// No kernel access: unit-tested directly.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/container/node_hash_map.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/model/object_ref.h"
#include "agent/model/objects.h"
#include "agent/policy/entry.h"
#include "agent/policy/target_grants.h"
#include "shunt/abi/policy.h"

namespace shunt::policy {

struct CompiledPolicy {
  absl::btree_map<EntryKey, Grant> entries;
  std::map<uint32_t, std::string> rules;  // rule id -> TrafficTarget "ns/name"
  // Changes whenever `rules` changes; unique across compilers in the process,
  // so a writer can skip comparing 10,000 names when nothing changed.
  uint64_t rules_stamp = 0;
  std::vector<model::Problem> problems;  // dangling references, empty grants
  absl::flat_hash_set<endpoints::IdentityAllocator::Key> identities;  // every SA the policy names
  int l7_targets = 0;  // TrafficTargets whose HTTP rules the kernel cannot judge
};

class PolicyCompiler : private RouteLookup {
 public:
  // Identities come from `ids` (allocating for SAs no pod uses yet); rule
  // ids from `rule_ids`, keyed by (namespace, name) of the TrafficTarget.
  // Both must outlive the compiler, and must keep every number the policy
  // uses (policy().identities, the TrafficTargets' names) allocated.
  // `namespace_budget`: policy entries the TrafficTargets of one namespace
  // may take together (the map is shared by all: one namespace listing
  // every port must not fill it for the others). A TrafficTarget that would
  // go over keeps its last grants that fitted, or grants nothing, and is
  // reported.
  static constexpr size_t kDefaultNamespaceBudget = SHUNT_MAX_POLICY / 4;
  PolicyCompiler(endpoints::IdentityAllocator& ids, endpoints::IdentityAllocator& rule_ids,
                 size_t namespace_budget = kDefaultNamespaceBudget)
      : ids_(ids), rule_ids_(rule_ids), namespace_budget_(namespace_budget) {}
  PolicyCompiler(const PolicyCompiler&) = delete;
  PolicyCompiler& operator=(const PolicyCompiler&) = delete;

  // Brings policy() to `objects`. Objects of the same kind and name after
  // the first are ignored (the source reports duplicates). Returns how many
  // TrafficTargets were compiled (new, changed, or with changed routes).
  int Update(const model::Objects& objects);

  const CompiledPolicy& policy() const { return policy_; }

  // The entry keys whose grant changed (added, changed or removed) since the
  // last call, in key order: what a writer has to touch.
  std::vector<EntryKey> TakeChanges();

 private:
  using Name = std::pair<std::string, std::string>;  // namespace, name
  template <typename T>
  struct Cached {
    T object;
    uint64_t seen = 0;  // the Update that last saw it
  };
  struct Target {
    model::TrafficTarget object;
    uint64_t seen = 0;
    uint32_t rule_id = 0;
    bool compiled = false;  // grants are in contributions_
    TargetGrants grants;
    // The last grants that fitted its namespace's budget, kept when an edit
    // (of the TrafficTarget or of its routes) would go over.
    std::optional<TargetGrants> last_fitting;
  };
  struct RouteRef {
    model::RouteKind kind;
    Name name;
    bool operator==(const RouteRef&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const RouteRef& r) {
      return H::combine(std::move(h), r.kind, r.name);
    }
  };

  const model::PortRoute* PortRoute(model::RouteKind kind, const std::string& ns,
                                    const std::string& name) const override;
  const model::HttpRouteGroup* HttpRouteGroup(const std::string& ns,
                                              const std::string& name) const override;

  template <typename T>
  void SyncRoutes(const std::vector<T>& now, model::RouteKind kind,
                  absl::node_hash_map<Name, Cached<T>>& cache, std::vector<Cached<T>*>& order,
                  absl::flat_hash_set<Target*>& dirty);
  void Withdraw(Target& t);
  void Contribute(Target& t);
  std::optional<policy::Grant> Winner(const EntryKey& k) const;
  std::optional<policy::Grant> Final(const EntryKey& k) const;
  void Settle();

  endpoints::IdentityAllocator& ids_;
  endpoints::IdentityAllocator& rule_ids_;
  const size_t namespace_budget_;
  absl::flat_hash_map<std::string, size_t> namespace_entries_;  // grants in force per namespace
  uint64_t update_ = 0;

  absl::node_hash_map<Name, Target> targets_;
  std::vector<Target*> target_order_;  // as in the last objects, for cheap matching
  absl::flat_hash_map<uint32_t, const Target*> by_rule_;
  absl::node_hash_map<Name, Cached<model::PortRoute>> tcp_routes_, udp_routes_;
  absl::node_hash_map<Name, Cached<model::HttpRouteGroup>> http_groups_;
  std::vector<Cached<model::PortRoute>*> tcp_order_, udp_order_;
  std::vector<Cached<model::HttpRouteGroup>*> http_order_;
  // Which TrafficTargets refer to a route (existing or not), so a changed
  // route recompiles exactly its users.
  absl::flat_hash_map<RouteRef, absl::flat_hash_set<Target*>> route_users_;

  // Every TrafficTarget's grant per key; the policy holds the winner.
  absl::flat_hash_map<EntryKey, absl::InlinedVector<policy::Grant, 1>> contributions_;
  struct IdentityRef {
    int count = 0;
    endpoints::IdentityAllocator::Key key;  // as it was when first named
  };
  absl::flat_hash_map<uint32_t, IdentityRef> identity_refs_;
  absl::btree_set<EntryKey> touched_;  // contributions changed, not yet settled
  absl::btree_set<EntryKey> changes_;  // policy entries changed, not yet taken

  CompiledPolicy policy_;
};

// One-shot compile (tests, tools): a fresh PolicyCompiler's first Update.
CompiledPolicy Compile(const model::Objects& objects, endpoints::IdentityAllocator& ids,
                       endpoints::IdentityAllocator& rule_ids);

// What the kernel decides for one connection, and why, in words.
struct Decision {
  uint8_t verdict = 0;  // 0 = deny
  uint32_t rule_id = 0;
  uint16_t matched_port = 0;  // the entry's port (0 = the any-port entry)
};
Decision Decide(const CompiledPolicy& p, uint32_t src, uint32_t dst, uint16_t port, uint8_t proto);

}  // namespace shunt::policy
