// Fuzz target map_decode: shuntctl's decoders of the pinned maps (`maps
// dump NAME` and the commands built on it), run over in-memory maps filled
// from the input: for each map in turn, a count byte, then that many raw
// key and value structs; the sockhash's keys with an optional cookie; the
// counters.
//
// Beyond not crashing, every decoded map prints as shuntctl prints it
// (dump(2), which throws on a string that is not UTF-8) and reads back as
// JSON, has one row per entry where rows map to entries, and an unknown
// map name is NotFound.
#include <string>

#include "agent/lib/memory_map.h"
#include "test/fuzz/fuzz_check.h"
#include "tools/shuntctl/map_decode.h"

namespace shunt::fuzz {
namespace {

// Up to 7 entries of raw key and value bytes.
template <typename K, typename V>
void Fill(Bytes& in, lib::MemoryMap<K, V>& map) {
  const int n = in.Byte() % 8;
  for (int i = 0; i < n && in.left() > 0; ++i) {
    const K k = in.Take<K>();
    const V v = in.Take<V>();
    FUZZ_CHECK(map.Update(k, v).ok());
  }
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  fuzz::Bytes in(data, size);
  lib::MemoryMap<__u64, shunt_endpoint> endpoints("endpoints");
  lib::MemoryMap<__u64, shunt_endpoint_meta> endpoint_meta("endpoint_meta");
  lib::MemoryMap<__be32, shunt_ipcache_entry> ipcache("ipcache");
  lib::MemoryMap<shunt_ip6, shunt_ipcache_entry> ipcache6("ipcache6");
  lib::MemoryMap<__u32, shunt_meta> meta("meta");
  lib::MemoryMap<shunt_policy_key, shunt_policy_value> policy("policy");
  lib::MemoryMap<__u32, shunt_rule_meta> rule_meta("rule_meta");
  lib::MemoryMap<__u32, shunt_identity_meta> identity_meta("identity_meta");
  lib::MemoryMap<__u32, shunt_config> config("config");
  lib::MemoryMap<shunt_flow_key, shunt_flow> flows("flows");
  lib::MemoryMap<shunt_flow_key, shunt_flow_hist> flow_hists("flow_hists");
  lib::MemoryMap<shunt_svc_key, shunt_svc_value> services("services");
  lib::MemoryMap<shunt_slot_key, shunt_backend> slots("slots");
  lib::MemoryMap<shunt_backend, shunt_lb_score> lb_scores("lb_scores");
  fuzz::Fill(in, endpoints);
  fuzz::Fill(in, endpoint_meta);
  fuzz::Fill(in, ipcache);
  fuzz::Fill(in, ipcache6);
  fuzz::Fill(in, meta);
  fuzz::Fill(in, policy);
  fuzz::Fill(in, rule_meta);
  fuzz::Fill(in, identity_meta);
  fuzz::Fill(in, config);
  fuzz::Fill(in, flows);
  fuzz::Fill(in, flow_hists);
  fuzz::Fill(in, services);
  fuzz::Fill(in, slots);
  fuzz::Fill(in, lb_scores);
  std::vector<ctl::SockhashEntry> socks;
  for (int i = in.Byte() % 8; i > 0 && in.left() > 0; --i) {
    const auto key = in.Take<shunt_sock_key>();
    const bool has_cookie = in.Byte() & 1;
    const auto cookie = in.Take<uint64_t>();
    socks.emplace_back(key, has_cookie ? std::optional<uint64_t>(cookie) : std::nullopt);
  }
  lib::Counters counters{};
  for (auto& c : counters) c = in.Take<uint64_t>();

  const ctl::MapSet maps{
      .endpoints = &endpoints,
      .endpoint_meta = &endpoint_meta,
      .ipcache = &ipcache,
      .ipcache6 = &ipcache6,
      .meta = &meta,
      .policy = &policy,
      .rule_meta = &rule_meta,
      .identity_meta = &identity_meta,
      .config = &config,
      .flows = &flows,
      .flow_hists = &flow_hists,
      .services = &services,
      .slots = &slots,
      .lb_scores = &lb_scores,
      .sockhash = [&socks]() -> absl::StatusOr<std::vector<ctl::SockhashEntry>> { return socks; },
      .counters = [&counters]() -> absl::StatusOr<lib::Counters> { return counters; }};

  const std::pair<const char*, size_t> kRows[] = {{"endpoints", endpoints.size()},
                                                  {"ep_meta", endpoint_meta.size()},
                                                  {"ipcache", ipcache.size()},
                                                  {"ipcache6", ipcache6.size()},
                                                  {"sockhash", socks.size()},
                                                  {"counters", counters.size()},
                                                  {"policy", policy.size()},
                                                  {"identities", identity_meta.size()},
                                                  {"rules", rule_meta.size()},
                                                  {"flows", flows.size()},
                                                  {"flow_hists", flow_hists.size()},
                                                  {"services", services.size()},
                                                  {"lb_scores", lb_scores.size()},
                                                  {"meta", 1},
                                                  {"config", 1}};
  for (const auto& [name, rows] : kRows) {
    auto out = ctl::DumpMap(maps, name);
    if (!out.ok()) {
      // Only meta and config are single entries that may be missing.
      FUZZ_CHECK(absl::IsNotFound(out.status()));
      FUZZ_CHECK(std::string(name) == "meta" || std::string(name) == "config");
      continue;
    }
    FUZZ_CHECK(out->is_array());
    FUZZ_CHECK(out->size() == rows);
    const std::string printed = out->dump(2);  // as shuntctl prints it
    FUZZ_CHECK(nlohmann::ordered_json::parse(printed) == *out);
  }
  FUZZ_CHECK(absl::IsNotFound(ctl::DumpMap(maps, "no-such-map").status()));
  return 0;
}
