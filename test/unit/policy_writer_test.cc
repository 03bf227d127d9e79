// PolicyWriter (agent/policy/policy_writer.h) over in-memory maps: the
// policy map follows the compiled policy by differences (only the keys the
// compiler says changed, when it says so), the names shuntctl shows are in
// place before the entries that use them, a failed write is reported and
// repaired by the next Apply, and an earlier agent's maps are adopted.
#include "agent/policy/policy_writer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/memory_map.h"
#include "agent/policy/compiler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/policy.h"

namespace shunt::policy {
namespace {

using model::RouteKind;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using PolicyMap = lib::MemoryMap<shunt_policy_key, shunt_policy_value>;
using RuleMetaMap = lib::MemoryMap<__u32, shunt_rule_meta>;
using IdentityMetaMap = lib::MemoryMap<__u32, shunt_identity_meta>;

model::TrafficTarget Target(const std::string& name, const std::string& dst,
                            std::vector<std::string> srcs, const std::string& route) {
  model::TrafficTarget t{.namespace_ = "ns",
                         .name = name,
                         .api_version = "access.smi-spec.io/v1alpha3",
                         .destination = {"ns", dst}};
  for (auto& s : srcs) t.sources.push_back({"ns", s});
  t.rules = {{.kind = RouteKind::kTcp, .name = route}};
  return t;
}

model::Objects Objects(std::vector<model::TrafficTarget> targets) {
  model::Objects o;
  o.tcp_routes = {{.kind = RouteKind::kTcp, .namespace_ = "ns", .name = "web", .ports = {80}},
                  {.kind = RouteKind::kTcp, .namespace_ = "ns", .name = "db", .ports = {5432}}};
  o.traffic_targets = std::move(targets);
  return o;
}

shunt_policy_key AbiKey(const EntryKey& k) {
  shunt_policy_key key{};
  key.src_identity = k.src;
  key.dst_identity = k.dst;
  key.dport = htons(k.port);
  key.proto = k.proto;
  return key;
}

EntryKey KeyOf(const shunt_policy_key& k) {
  return {k.src_identity, k.dst_identity, ntohs(k.dport), k.proto};
}

std::string Name(const char* ns, const char* name) { return absl::StrCat(ns, "/", name); }

class PolicyWriterTest : public ::testing::Test {
 protected:
  // Compiles `o` and applies it with the compiler's changes, as the agent
  // does. Returns the changes.
  std::vector<EntryKey> Update(const model::Objects& o, lib::DiffReport* report = nullptr) {
    compiler_.Update(o);
    std::vector<EntryKey> changes = compiler_.TakeChanges();
    lib::DiffReport r = writer_.Apply(compiler_.policy(), ids_, &changes);
    if (report) *report = r;
    return changes;
  }

  // Before every operation on any of the three maps (so, in every state the
  // maps pass through), each policy entry's rule and identities have names.
  // Records each operation; `fail_` may make it fail.
  void Watch() {
    policy_->FailWhen([this](bool update, const shunt_policy_key& k) {
      CheckNamed();
      const EntryKey e = KeyOf(k);
      timeline_.push_back(
          absl::StrCat("policy", update ? "+ " : "- ", e.src, ">", e.dst, ":", e.port));
      return fail_policy_ && fail_policy_(update, e);
    });
    rule_meta_->FailWhen([this](bool update, const __u32& id) {
      CheckNamed();
      timeline_.push_back(absl::StrCat("rule", update ? "+ " : "- ", id));
      return fail_rule_ && fail_rule_(update, id);
    });
    identity_meta_->FailWhen([this](bool update, const __u32& id) {
      CheckNamed();
      timeline_.push_back(absl::StrCat("identity", update ? "+ " : "- ", id));
      return fail_identity_ && fail_identity_(update, id);
    });
  }

  void CheckNamed() const {
    if (!check_named_) return;
    const std::string after = timeline_.empty() ? "nothing" : timeline_.back();
    for (const auto& [k, v] : policy_->entries()) {
      EXPECT_TRUE(rule_meta_->Lookup(v.rule_id).ok())
          << "rule " << v.rule_id << " has no name (after: " << after << ")";
      EXPECT_TRUE(identity_meta_->Lookup(k.src_identity).ok())
          << "identity " << k.src_identity << " has no name (after: " << after << ")";
      EXPECT_TRUE(identity_meta_->Lookup(k.dst_identity).ok())
          << "identity " << k.dst_identity << " has no name (after: " << after << ")";
    }
  }

  // The policy map in the compiler's terms.
  absl::btree_map<EntryKey, Grant> Entries() const {
    absl::btree_map<EntryKey, Grant> out;
    for (const auto& [k, v] : policy_->entries())
      out[KeyOf(k)] = {.verdict = v.verdict, .rule_id = v.rule_id};
    return out;
  }
  std::string RuleName(uint32_t id) const {
    auto m = rule_meta_->Lookup(id);
    return m.ok() ? Name(m->namespace_, m->name) : "(none)";
  }
  std::string IdentityName(uint32_t id) const {
    auto m = identity_meta_->Lookup(id);
    return m.ok() ? Name(m->namespace_, m->service_account) : "(none)";
  }
  uint32_t Id(const std::string& sa) { return ids_.Get({"ns", sa}); }
  uint32_t RuleId(const std::string& target) { return rule_ids_.Get({"ns", target}); }

  void Clear() {
    policy_->ClearJournal();
    rule_meta_->ClearJournal();
    identity_meta_->ClearJournal();
    timeline_.clear();
  }
  bool NoWrites() const {
    return policy_->journal().empty() && rule_meta_->journal().empty() &&
           identity_meta_->journal().empty();
  }

  std::shared_ptr<PolicyMap> policy_ = std::make_shared<PolicyMap>("policy");
  std::shared_ptr<RuleMetaMap> rule_meta_ = std::make_shared<RuleMetaMap>("rule_meta");
  std::shared_ptr<IdentityMetaMap> identity_meta_ =
      std::make_shared<IdentityMetaMap>("identity_meta");
  endpoints::IdentityAllocator ids_, rule_ids_;
  PolicyCompiler compiler_{ids_, rule_ids_};
  PolicyWriter writer_{policy_, rule_meta_, identity_meta_};
  std::vector<std::string> timeline_;
  bool check_named_ = true;
  std::function<bool(bool, const EntryKey&)> fail_policy_;
  std::function<bool(bool, __u32)> fail_rule_, fail_identity_;
};

const model::Objects kTwoTargets =
    Objects({Target("a", "srv", {"c1"}, "web"), Target("b", "db", {"srv"}, "db")});

TEST_F(PolicyWriterTest, WritesThePolicyAndItsNamesThenOnlyDifferences) {
  lib::DiffReport r;
  Update(kTwoTargets, &r);
  EXPECT_THAT(r.errors, IsEmpty());
  ASSERT_THAT(compiler_.policy().entries, SizeIs(2));
  EXPECT_EQ(Entries(), compiler_.policy().entries);
  EXPECT_EQ(writer_.entries(), 2u);
  const auto& a = *compiler_.policy().entries.find({Id("c1"), Id("srv"), 80, kTcp});
  EXPECT_EQ(a.second.verdict, SHUNT_VERDICT_ALLOW);
  EXPECT_EQ(RuleName(a.second.rule_id), "ns/a");
  EXPECT_EQ(RuleName(RuleId("b")), "ns/b");
  EXPECT_EQ(rule_meta_->size(), 2u);
  EXPECT_EQ(IdentityName(Id("c1")), "ns/c1");
  EXPECT_EQ(IdentityName(Id("srv")), "ns/srv");
  EXPECT_EQ(IdentityName(Id("db")), "ns/db");
  EXPECT_EQ(identity_meta_->size(), 3u);
  // The kernel's key: port in network order, padding zero.
  shunt_policy_key k{};
  k.src_identity = Id("c1");
  k.dst_identity = Id("srv");
  k.dport = htons(80);
  k.proto = 6;
  EXPECT_TRUE(policy_->Lookup(k).ok());

  // The same objects again: the compiler reports no change, nothing is
  // written; a full comparison (no list of changes) writes nothing either.
  Clear();
  Update(kTwoTargets, &r);
  EXPECT_TRUE(NoWrites());
  EXPECT_EQ(r.written + r.deleted, 0);
  r = writer_.Apply(compiler_.policy(), ids_);
  EXPECT_TRUE(NoWrites());
  EXPECT_EQ(r.written + r.deleted, 0);
  EXPECT_EQ(r.unchanged, 2);
}

TEST_F(PolicyWriterTest, ChangesTouchOnlyTheirKeys) {
  Update(kTwoTargets);
  Clear();
  // c2 joins a (one new entry), b goes (one entry fewer).
  lib::DiffReport r;
  const std::vector<EntryKey> changes =
      Update(Objects({Target("a", "srv", {"c1", "c2"}, "web")}), &r);
  EXPECT_THAT(r.errors, IsEmpty());
  ASSERT_THAT(changes, SizeIs(2));
  std::vector<EntryKey> touched;
  for (const auto& op : policy_->journal()) touched.push_back(KeyOf(op.key));
  std::sort(touched.begin(), touched.end());
  EXPECT_EQ(touched, changes);
  EXPECT_EQ(Entries(), compiler_.policy().entries);

  // The writer trusts the list: an entry that differs but is not listed is
  // not compared, a listed one is.
  const EntryKey k1{Id("c1"), Id("srv"), 80, kTcp}, k9{Id("c9"), Id("srv"), 80, kTcp};
  CompiledPolicy p = compiler_.policy();
  p.entries[k1] = {.verdict = SHUNT_VERDICT_L7, .rule_id = RuleId("a")};
  p.entries[k9] = {.verdict = SHUNT_VERDICT_ALLOW, .rule_id = RuleId("a")};
  Clear();
  const std::vector<EntryKey> only_k9 = {k9};
  r = writer_.Apply(p, ids_, &only_k9);
  ASSERT_THAT(policy_->journal(), SizeIs(1));
  EXPECT_EQ(KeyOf(policy_->journal()[0].key), k9);
  EXPECT_EQ(Entries().at(k1).verdict, SHUNT_VERDICT_ALLOW);
  // Without a list, everything is compared.
  r = writer_.Apply(p, ids_);
  EXPECT_EQ(Entries(), p.entries);
  EXPECT_EQ(r.written, 1);
}

TEST_F(PolicyWriterTest, NamesAreWrittenBeforeTheEntriesThatUseThem) {
  Watch();
  Update(kTwoTargets);
  // A new TrafficTarget with a new rule id and two new identities.
  Update(Objects({Target("a", "srv", {"c1"}, "web"), Target("b", "db", {"srv"}, "db"),
                  Target("c", "cache", {"c3"}, "db")}));
  EXPECT_EQ(RuleName(RuleId("c")), "ns/c");
  EXPECT_EQ(IdentityName(Id("c3")), "ns/c3");
  EXPECT_EQ(IdentityName(Id("cache")), "ns/cache");
  EXPECT_EQ(Entries(), compiler_.policy().entries);
  EXPECT_EQ(timeline_.back(), absl::StrCat("policy+ ", Id("c3"), ">", Id("cache"), ":5432"));
}

// The agent drops an identity (IdentityAllocator::Retain) in the same
// reconcile that removes the entries using it: its name, like a removed
// rule's, must go after those entries, not before.
TEST_F(PolicyWriterTest, NamesOutliveTheEntriesThatUseThem) {
  Watch();
  Update(kTwoTargets);
  const uint32_t c1 = Id("c1"), rule_a = RuleId("a");
  timeline_.clear();
  const model::Objects only_b = Objects({Target("b", "db", {"srv"}, "db")});
  compiler_.Update(only_b);
  ids_.Retain({{"ns", "srv"}, {"ns", "db"}});
  rule_ids_.Retain({{"ns", "b"}});
  const std::vector<EntryKey> changes = compiler_.TakeChanges();
  lib::DiffReport r = writer_.Apply(compiler_.policy(), ids_, &changes);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(Entries(), compiler_.policy().entries);
  EXPECT_EQ(RuleName(rule_a), "(none)");
  EXPECT_EQ(IdentityName(c1), "(none)");
  EXPECT_EQ(r.deleted, 3);
  ASSERT_THAT(timeline_, SizeIs(3));
  EXPECT_EQ(timeline_[0], absl::StrCat("policy- ", c1, ">", Id("srv"), ":80"));

  // Without a list of changes (a full comparison), the same order.
  Update(kTwoTargets);
  timeline_.clear();
  compiler_.Update(only_b);
  ids_.Retain({{"ns", "srv"}, {"ns", "db"}});
  rule_ids_.Retain({{"ns", "b"}});
  compiler_.TakeChanges();
  r = writer_.Apply(compiler_.policy(), ids_);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(Entries(), compiler_.policy().entries);
  ASSERT_THAT(timeline_, SizeIs(3));
  EXPECT_EQ(timeline_[0], absl::StrCat("policy- ", Id("c1"), ">", Id("srv"), ":80"));

  // An entry that fails to go keeps its names until it has gone.
  Update(kTwoTargets);
  fail_policy_ = [](bool update, const EntryKey&) { return !update; };
  compiler_.Update(only_b);
  ids_.Retain({{"ns", "srv"}, {"ns", "db"}});
  rule_ids_.Retain({{"ns", "b"}});
  const std::vector<EntryKey> again = compiler_.TakeChanges();
  r = writer_.Apply(compiler_.policy(), ids_, &again);
  EXPECT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(Entries(), SizeIs(2));
  fail_policy_ = nullptr;
  r = writer_.Apply(compiler_.policy(), ids_, nullptr);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(Entries(), compiler_.policy().entries);
  EXPECT_EQ(rule_meta_->size(), 1u);
  EXPECT_EQ(identity_meta_->size(), 2u);
}

// Names changed later (one new TrafficTarget, one new service account) are
// written one by one; one that fails must still be written by the next
// Apply, although the names have not changed since.
TEST_F(PolicyWriterTest, FailedNameChangeIsRepairedByTheNextApply) {
  Watch();
  Update(kTwoTargets);
  check_named_ = false;  // an entry whose name failed is still written
  const model::Objects three =
      Objects({Target("a", "srv", {"c1"}, "web"), Target("b", "db", {"srv"}, "db"),
               Target("c", "cache", {"c3"}, "db")});
  fail_rule_ = [&](bool update, __u32) { return update; };
  fail_identity_ = [&](bool update, __u32 id) { return update && id == Id("c3"); };
  lib::DiffReport r;
  Update(three, &r);
  ASSERT_THAT(r.errors, SizeIs(2));
  EXPECT_THAT(r.errors[0], HasSubstr(absl::StrCat("identity ", Id("c3"))));
  EXPECT_THAT(r.errors[1], HasSubstr(absl::StrCat("rule ", RuleId("c"))));
  EXPECT_EQ(Entries(), compiler_.policy().entries) << "the rest applies";
  EXPECT_EQ(IdentityName(Id("cache")), "ns/cache");

  fail_rule_ = nullptr;
  fail_identity_ = nullptr;
  Update(three, &r);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(RuleName(RuleId("c")), "ns/c");
  EXPECT_EQ(IdentityName(Id("c3")), "ns/c3");
  Clear();
  Update(three, &r);
  EXPECT_TRUE(NoWrites()) << "repaired once, then quiet";
}

TEST_F(PolicyWriterTest, FailedPolicyWriteIsReportedTheRestAppliesAndTheNextApplyRepairs) {
  Watch();
  fail_policy_ = [&](bool update, const EntryKey& k) { return update && k.port == 80; };
  lib::DiffReport r;
  Update(kTwoTargets, &r);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0],
              HasSubstr(absl::StrCat("policy ", Id("c1"), "->", Id("srv"), " port 80/tcp")));
  EXPECT_THAT(r.errors[0], HasSubstr("injected"));
  EXPECT_EQ(r.written, 6);  // 3 identities, 2 rules, 1 entry
  EXPECT_THAT(Entries(), SizeIs(1));
  EXPECT_TRUE(Entries().contains(EntryKey{Id("srv"), Id("db"), 5432, kTcp}));

  // Nothing changed since for the compiler, but the map is behind: the next
  // Apply compares everything.
  fail_policy_ = nullptr;
  Clear();
  const std::vector<EntryKey> changes = Update(kTwoTargets, &r);
  EXPECT_THAT(changes, IsEmpty());
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.written, 1);
  EXPECT_EQ(Entries(), compiler_.policy().entries);
}

TEST_F(PolicyWriterTest, FailedNameOnTheFirstApplyIsRepairedByTheNextApply) {
  fail_rule_ = [&](bool update, __u32 id) { return update && id == RuleId("a"); };
  Watch();
  check_named_ = false;  // an entry whose rule name failed is still written
  lib::DiffReport r;
  Update(kTwoTargets, &r);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0], HasSubstr("injected"));
  EXPECT_EQ(Entries(), compiler_.policy().entries) << "the rest applies";
  EXPECT_EQ(RuleName(RuleId("a")), "(none)");
  timeline_.clear();
  fail_rule_ = nullptr;
  Update(kTwoTargets, &r);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(RuleName(RuleId("a")), "ns/a");
}

TEST_F(PolicyWriterTest, LoadAdoptsAnEarlierAgentsEntries) {
  {
    PolicyWriter earlier(policy_, rule_meta_, identity_meta_);
    compiler_.Update(kTwoTargets);
    EXPECT_THAT(earlier.Apply(compiler_.policy(), ids_).errors, IsEmpty());
  }
  // What the earlier agent had that this one has not: an entry, a rule, an
  // identity.
  const EntryKey stale{Id("db"), Id("srv"), 80, kTcp};
  ASSERT_TRUE(policy_->Update(AbiKey(stale), {SHUNT_VERDICT_ALLOW, {}, RuleId("b")}).ok());
  ASSERT_TRUE(rule_meta_->Update(900, shunt_rule_meta{"ns", "gone"}).ok());
  ASSERT_TRUE(identity_meta_->Update(900, shunt_identity_meta{"ns", "gone"}).ok());
  Clear();

  // The first Apply of a new agent comes with the compiler's first changes
  // (every entry); the maps are compared whole anyway.
  ASSERT_TRUE(writer_.Load().ok());
  EXPECT_EQ(writer_.entries(), 3u);
  EXPECT_TRUE(NoWrites());
  const std::vector<EntryKey> changes = compiler_.TakeChanges();
  lib::DiffReport r = writer_.Apply(compiler_.policy(), ids_, &changes);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(r.deleted, 3);
  ASSERT_THAT(policy_->journal(), SizeIs(1));
  EXPECT_FALSE(policy_->journal()[0].update);
  EXPECT_EQ(KeyOf(policy_->journal()[0].key), stale);
  ASSERT_THAT(rule_meta_->journal(), SizeIs(1));
  EXPECT_EQ(rule_meta_->journal()[0].key, 900u);
  ASSERT_THAT(identity_meta_->journal(), SizeIs(1));
  EXPECT_EQ(identity_meta_->journal()[0].key, 900u);
  EXPECT_EQ(Entries(), compiler_.policy().entries);

  Clear();
  Update(kTwoTargets, &r);
  EXPECT_TRUE(NoWrites());
}

}  // namespace
}  // namespace shunt::policy
