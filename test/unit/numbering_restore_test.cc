// RestoreNumbering (agent/endpoints/numbering_restore.h): a starting agent
// re-adopts the identity and rule numbers an earlier one left in the maps,
// and names every map it could not read.
#include "agent/endpoints/numbering_restore.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/lib/memory_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/policy.h"
#include "test/unit/fake_endpoint_maps.h"

namespace shunt::endpoints {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

using IdentityMetaMap = lib::MemoryMap<__u32, shunt_identity_meta>;
using RuleMetaMap = lib::MemoryMap<__u32, shunt_rule_meta>;

template <size_t N>
void Copy(char (&dst)[N], const std::string& src) {
  std::memset(dst, 0, N);
  std::memcpy(dst, src.data(), std::min(src.size(), N - 1));
}

shunt_identity_meta IdentityMeta(const std::string& ns, const std::string& sa) {
  shunt_identity_meta m{};
  Copy(m.namespace_, ns);
  Copy(m.service_account, sa);
  return m;
}

shunt_rule_meta RuleMeta(const std::string& ns, const std::string& name) {
  shunt_rule_meta m{};
  Copy(m.namespace_, ns);
  Copy(m.name, name);
  return m;
}

EndpointEntry RestoredEndpoint(const std::string& ns, const std::string& pod, const std::string& sa,
                               uint32_t identity) {
  EndpointEntry e;
  e.ep.identity = identity;
  Copy(e.meta.namespace_, ns);
  Copy(e.meta.name, pod);
  Copy(e.meta.service_account, sa);
  return e;
}

class NumberingRestoreTest : public ::testing::Test {
 protected:
  std::vector<std::string> Restore() {
    return RestoreNumbering(
        {.identity_meta = &identity_meta_, .endpoints = &endpoints_, .rule_meta = &rule_meta_},
        identities_, rule_ids_);
  }

  IdentityMetaMap identity_meta_{"shunt_identity_meta_v1"};
  RuleMetaMap rule_meta_{"shunt_rule_meta_v1"};
  testing::FakeEndpointMaps endpoints_;
  IdentityAllocator identities_, rule_ids_;
};

TEST_F(NumberingRestoreTest, NumbersInTheMapsAreAdoptedAgain) {
  ASSERT_TRUE(identity_meta_.Update(300, IdentityMeta("demo", "web")).ok());
  ASSERT_TRUE(identity_meta_.Update(257, IdentityMeta("demo", "api")).ok());
  // A pod's identity that no name entry has (an agent stopped between the
  // two writes) is adopted from the endpoint.
  endpoints_.endpoints[11] = RestoredEndpoint("demo", "late-1", "late", 301);
  ASSERT_TRUE(rule_meta_.Update(260, RuleMeta("demo", "web-to-api")).ok());

  EXPECT_THAT(Restore(), IsEmpty());
  EXPECT_EQ(identities_.Get({"demo", "web"}), 300u);
  EXPECT_EQ(identities_.Get({"demo", "api"}), 257u);
  EXPECT_EQ(identities_.Get({"demo", "late"}), 301u);
  EXPECT_EQ(rule_ids_.Get({"demo", "web-to-api"}), 260u);
  // New pairs get numbers nobody had.
  EXPECT_EQ(identities_.Get({"demo", "new"}), 256u);
  EXPECT_EQ(identities_.Get({"demo", "newer"}), 258u);
  EXPECT_EQ(rule_ids_.Get({"demo", "new-target"}), 256u);
}

TEST_F(NumberingRestoreTest, TheNameMapWinsOverAnEndpointThatDisagrees) {
  ASSERT_TRUE(identity_meta_.Update(300, IdentityMeta("demo", "web")).ok());
  endpoints_.endpoints[11] =
      RestoredEndpoint("demo", "web-1", "web", 310);  // the pair has a number
  endpoints_.endpoints[12] =
      RestoredEndpoint("demo", "api-1", "api", 300);  // the number has a pair
  EXPECT_THAT(Restore(), IsEmpty());
  EXPECT_EQ(identities_.Get({"demo", "web"}), 300u);
  EXPECT_NE(identities_.Get({"demo", "api"}), 300u);
  EXPECT_EQ(identities_.size(), 2u);
}

TEST_F(NumberingRestoreTest, AMapThatCannotBeReadIsNamedAndTheRestStillCount) {
  ASSERT_TRUE(identity_meta_.Update(300, IdentityMeta("demo", "web")).ok());
  endpoints_.endpoints[11] = RestoredEndpoint("demo", "api-1", "api", 301);
  ASSERT_TRUE(rule_meta_.Update(260, RuleMeta("demo", "web-to-api")).ok());
  identity_meta_.FailReads(true);
  rule_meta_.FailReads(true);
  EXPECT_THAT(Restore(),
              ElementsAre("identity names (shunt_identity_meta_v1): bpf: iterate "
                          "shunt_identity_meta_v1: injected",
                          "rule names (shunt_rule_meta_v1): bpf: iterate shunt_rule_meta_v1: "
                          "injected"));
  EXPECT_EQ(identities_.Get({"demo", "api"}), 301u) << "the endpoints were read";
  EXPECT_EQ(identities_.size(), 1u);
  EXPECT_EQ(rule_ids_.size(), 0u);
}

TEST_F(NumberingRestoreTest, EndpointsThatCannotBeReadAreReported) {
  endpoints_.read_endpoints_status =
      absl::PermissionDeniedError("bpf: iterate shunt_endpoints_v2: Operation not permitted");
  EXPECT_THAT(Restore(), ElementsAre("endpoints: bpf: iterate shunt_endpoints_v2: Operation not "
                                     "permitted"));
}

// The kernel's names are fixed-size fields; one that fills its field has no
// NUL, and must not run into the next field.
TEST_F(NumberingRestoreTest, ANameThatFillsItsFieldEndsWithIt) {
  shunt_identity_meta m = IdentityMeta("", "web");
  std::memset(m.namespace_, 'n', sizeof(m.namespace_));
  ASSERT_TRUE(identity_meta_.Update(300, m).ok());
  shunt_rule_meta r = RuleMeta("", "web-to-api");
  std::memset(r.namespace_, 'n', sizeof(r.namespace_));
  ASSERT_TRUE(rule_meta_.Update(260, r).ok());
  EndpointEntry e = RestoredEndpoint("", "api-1", "api", 301);
  std::memset(e.meta.namespace_, 'n', sizeof(e.meta.namespace_));
  endpoints_.endpoints[11] = e;

  EXPECT_THAT(Restore(), IsEmpty());
  const std::string ns(sizeof(m.namespace_), 'n');
  ASSERT_NE(identities_.KeyOf(300), nullptr);
  EXPECT_EQ(*identities_.KeyOf(300), std::make_pair(ns, std::string("web")));
  ASSERT_NE(identities_.KeyOf(301), nullptr);
  EXPECT_EQ(*identities_.KeyOf(301), std::make_pair(ns, std::string("api")));
  ASSERT_NE(rule_ids_.KeyOf(260), nullptr);
  EXPECT_EQ(*rule_ids_.KeyOf(260), std::make_pair(ns, std::string("web-to-api")));
}

}  // namespace
}  // namespace shunt::endpoints
