// shuntctl's map decoders (tools/shuntctl/map_decode.h) over in-memory maps.
#include "tools/shuntctl/map_decode.h"

#include <cstring>

#include "agent/lib/memory_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::ctl {
namespace {

using ::testing::HasSubstr;

// Every map empty, the counters zero; tests fill what they need.
struct Maps {
  lib::MemoryMap<__u64, shunt_endpoint> endpoints{"endpoints"};
  lib::MemoryMap<__u64, shunt_endpoint_meta> endpoint_meta{"endpoint_meta"};
  lib::MemoryMap<__be32, shunt_ipcache_entry> ipcache{"ipcache"};
  lib::MemoryMap<__u32, shunt_meta> meta{"meta"};
  lib::MemoryMap<shunt_policy_key, shunt_policy_value> policy{"policy"};
  lib::MemoryMap<__u32, shunt_rule_meta> rule_meta{"rule_meta"};
  lib::MemoryMap<__u32, shunt_identity_meta> identity_meta{"identity_meta"};
  lib::MemoryMap<__u32, shunt_config> config{"config"};
  lib::MemoryMap<shunt_flow_key, shunt_flow> flows{"flows"};
  lib::MemoryMap<shunt_flow_key, shunt_flow_hist> flow_hists{"flow_hists"};
  lib::MemoryMap<shunt_svc_key, shunt_svc_value> services{"services"};
  lib::MemoryMap<shunt_slot_key, shunt_backend> slots{"slots"};
  lib::MemoryMap<shunt_backend, shunt_lb_score> lb_scores{"lb_scores"};
  MapSet Set() const {
    return {.endpoints = &endpoints,
            .endpoint_meta = &endpoint_meta,
            .ipcache = &ipcache,
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
            .sockhash = [] { return absl::StatusOr<std::vector<SockhashEntry>>(); },
            .counters = [] { return absl::StatusOr<lib::Counters>(lib::Counters{}); }};
  }
};

TEST(MapDecodeTest, RowsNameTheirFields) {
  Maps m;
  shunt_identity_meta id{};
  std::strcpy(id.namespace_, "demo");
  std::strcpy(id.service_account, "client");
  ASSERT_TRUE(m.identity_meta.Update(7, id).ok());
  auto rows = DumpMap(m.Set(), "identities");
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->dump(),
            R"([{"identity":7,"namespace":"demo","service_account":"client","pods":0,)"
            R"("local_pods":0}])");
  EXPECT_EQ(DumpMap(m.Set(), "meta").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(DumpMap(m.Set(), "nope").status().code(), absl::StatusCode::kNotFound);
}

// Found by fuzzing (test/fuzz map_decode): a name in a map that is not
// UTF-8 (a stale or foreign pin; names are raw bytes to the kernel) made
// `shuntctl maps dump` and `policy list` end in an uncaught
// nlohmann type_error when they printed the rows.
TEST(MapDecodeTest, NamesThatAreNotUtf8PrintWithReplacementCharacters) {
  Maps m;
  shunt_endpoint_meta meta{};
  std::memcpy(meta.namespace_, "de\xffmo", 5);
  std::memset(meta.name, 'x', sizeof(meta.name));  // no NUL: the whole field
  meta.name[sizeof(meta.name) - 1] = '\xc3';       // a sequence cut short
  ASSERT_TRUE(m.endpoint_meta.Update(1, meta).ok());
  auto rows = DumpMap(m.Set(), "ep_meta");
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::string printed;
  ASSERT_NO_THROW(printed = rows->dump(2));
  EXPECT_THAT(printed, HasSubstr("de\xef\xbf\xbdmo"));
  EXPECT_EQ((*rows)[0]["name"].get<std::string>().size(), sizeof(meta.name) - 1 + 3);
}

}  // namespace
}  // namespace shunt::ctl
