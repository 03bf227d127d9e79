// Decodes each pinned map into JSON rows with named fields, for `maps dump`
// and the commands built on it. One decoder per map of the ABI.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/pinned_maps.h"
#include "nlohmann/json.hpp"

namespace shunt::ctl {

// Keeps fields in the order the decoders write them.
using Json = nlohmann::ordered_json;

std::string Ipv4(uint32_t be);

// Rows of the named map (pin name, or its short name: endpoints, ipcache,
// sockhash, counters, meta, ep_meta). NotFound for an unknown name.
absl::StatusOr<Json> DumpMap(const lib::PinnedMaps& maps, const std::string& name);

// Short name -> pin name; empty if unknown.
std::string ResolveMapName(const std::string& name);

}  // namespace shunt::ctl
