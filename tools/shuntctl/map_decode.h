// Decodes each pinned map into JSON rows with named fields, for `maps dump`
// and the commands built on it. One decoder per map of the ABI.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/counters.h"
#include "agent/lib/pinned_maps.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/sockmap.h"

namespace shunt::ctl {

// Keeps fields in the order the decoders write them.
using Json = nlohmann::ordered_json;

std::string Ipv4(uint32_t be);

// A value as a table shows it: a string without its quotes, anything else as JSON.
std::string Str(const Json& v);

// The maps the decoders read: the pinned ones (DumpMap of PinnedMaps below)
// or in-memory ones (tests, the fuzzer). Every member must be set.
using SockhashEntry = std::pair<shunt_sock_key, std::optional<uint64_t>>;
struct MapSet {
  const lib::KvMap<__u64, shunt_endpoint>* endpoints = nullptr;
  const lib::KvMap<__u64, shunt_endpoint_meta>* endpoint_meta = nullptr;
  const lib::KvMap<__be32, shunt_ipcache_entry>* ipcache = nullptr;
  const lib::KvMap<shunt_ip6, shunt_ipcache_entry>* ipcache6 = nullptr;
  const lib::KvMap<__u32, shunt_meta>* meta = nullptr;
  const lib::KvMap<shunt_policy_key, shunt_policy_value>* policy = nullptr;
  const lib::KvMap<__u32, shunt_rule_meta>* rule_meta = nullptr;
  const lib::KvMap<__u32, shunt_identity_meta>* identity_meta = nullptr;
  const lib::KvMap<__u32, shunt_config>* config = nullptr;
  const lib::KvMap<shunt_flow_key, shunt_flow>* flows = nullptr;
  const lib::KvMap<shunt_flow_key, shunt_flow_hist>* flow_hists = nullptr;
  const lib::KvMap<shunt_svc_key, shunt_svc_value>* services = nullptr;
  const lib::KvMap<shunt_slot_key, shunt_backend>* slots = nullptr;
  const lib::KvMap<shunt_backend, shunt_lb_score>* lb_scores = nullptr;
  // The sockhash's keys, each with the socket cookie a lookup gave, if any.
  std::function<absl::StatusOr<std::vector<SockhashEntry>>()> sockhash;
  std::function<absl::StatusOr<lib::Counters>()> counters;
};

// Rows of the named map (pin name, or its short name: endpoints, ipcache,
// ipcache6, sockhash, counters, meta, ep_meta, ...). NotFound for an unknown name; a map
// that cannot be read is its error.
absl::StatusOr<Json> DumpMap(const MapSet& maps, const std::string& name);
absl::StatusOr<Json> DumpMap(const lib::PinnedMaps& maps, const std::string& name);

// Short name -> pin name; empty if unknown.
std::string ResolveMapName(const std::string& name);

}  // namespace shunt::ctl
