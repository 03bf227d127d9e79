// What one TrafficTarget grants on its own, before grants of several
// TrafficTargets are merged (compiler.h): its (source, destination, port,
// protocol) entries, the problems it has, and the identities it names.
// Kept per TrafficTarget so one changed object costs one recompile.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/model/smi.h"
#include "agent/policy/entry.h"

namespace shunt::policy {

// Resolves a TrafficTarget's rule references.
class RouteLookup {
 public:
  virtual ~RouteLookup() = default;
  // kind is kTcp or kUdp.
  virtual const model::PortRoute* PortRoute(model::RouteKind kind, const std::string& ns,
                                            const std::string& name) const = 0;
  virtual const model::HttpRouteGroup* HttpRouteGroup(const std::string& ns,
                                                      const std::string& name) const = 0;
};

struct TargetGrant {
  EntryKey key;
  uint8_t verdict = 0;  // SHUNT_VERDICT_ALLOW or SHUNT_VERDICT_L7
  auto operator<=>(const TargetGrant&) const = default;
};

struct TargetGrants {
  std::vector<TargetGrant> grants;              // sorted, one per key
  std::vector<std::string> problems;            // reasons; the TrafficTarget is the object
  absl::InlinedVector<uint32_t, 4> identities;  // destination and sources, sorted, unique
  bool l7 = false;                              // has HTTP grants the kernel cannot judge
};

// Per ../shared/SMI.md section 7; see compiler.h for the rules in words.
TargetGrants CompileTarget(const model::TrafficTarget& t, const RouteLookup& routes,
                           endpoints::IdentityAllocator& ids);

}  // namespace shunt::policy
