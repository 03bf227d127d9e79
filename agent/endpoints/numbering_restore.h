// Identity and rule numbers survive agent restarts: a starting agent
// re-adopts the numbers an earlier one left in the pinned maps, so the
// kernel's policy and endpoint entries keep meaning the same pairs.
#pragma once

#include <string>
#include <vector>

#include "agent/endpoints/endpoint_maps.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/lib/typed_map.h"
#include "shunt/abi/policy.h"

namespace shunt::endpoints {

struct NumberingSources {
  const lib::KvMap<__u32, shunt_identity_meta>* identity_meta;
  EndpointMaps* endpoints;
  const lib::KvMap<__u32, shunt_rule_meta>* rule_meta;
};

// Seeds `identities` and `rule_ids` from what the maps hold. Returns one
// message per map that could not be read ("identity names
// (shunt_identity_meta_v1): ..."): the numbers it held may be given out
// anew, so callers must log, count and report them, never drop them.
std::vector<std::string> RestoreNumbering(const NumberingSources& from,
                                          IdentityAllocator& identities,
                                          IdentityAllocator& rule_ids);

}  // namespace shunt::endpoints
