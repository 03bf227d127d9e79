// ServiceWriter (agent/services/service_writer.h) over in-memory maps: what
// connect() relies on. A service entry only ever points at a slot table that
// is completely written (checked before every single map operation, across
// both maps), changed services get a new table, unchanged ones cost nothing,
// small tables live in the entry, and an earlier agent's maps are adopted.
#include "agent/services/service_writer.h"

#include <arpa/inet.h>

#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"
#include "agent/lib/memory_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/service.h"
#include "test/unit/ipv4_util.h"

namespace shunt::services {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

using ServiceMap = lib::MemoryMap<shunt_svc_key, shunt_svc_value>;
using SlotMap = lib::MemoryMap<shunt_slot_key, shunt_backend>;

using test_util::Ipv4Be;

Backend B(const char* ip, uint16_t port = 8080) { return {.ip_be = Ipv4Be(ip), .port = port}; }

// A service entry whose slot table is `slots` (indices into `backends`); by
// default one slot per backend.
ServiceEntry Entry(const std::string& service, const char* vip, std::vector<Backend> backends,
                   std::vector<uint32_t> slots = {}, uint8_t lb = SHUNT_LB_RANDOM,
                   uint16_t port = 80) {
  ServiceEntry e{.service = service, .port_name = "http", .vip_be = Ipv4Be(vip), .port = port};
  e.lb = lb;
  e.backends = std::move(backends);
  if (slots.empty())
    for (uint32_t i = 0; i < e.backends.size(); ++i) slots.push_back(i);
  e.slots = std::move(slots);
  return e;
}

// Six slots over two backends: too many to live in the service entry.
ServiceEntry Big(const std::string& service, const char* vip, const char* ip1, const char* ip2) {
  return Entry(service, vip, {B(ip1), B(ip2)}, {0, 1, 0, 1, 0, 1});
}

shunt_svc_key SvcKey(const char* vip, uint16_t port = 80, uint8_t proto = 6) {
  shunt_svc_key k{};
  k.vip = Ipv4Be(vip);
  k.port = htons(port);
  k.proto = proto;
  return k;
}

// The slots a kernel lookup would see for `e`, in order.
std::vector<std::pair<uint32_t, uint16_t>> Want(const ServiceEntry& e) {
  std::vector<std::pair<uint32_t, uint16_t>> out;
  for (uint32_t i : e.slots) out.emplace_back(e.backends[i].ip_be, htons(e.backends[i].port));
  return out;
}

class ServiceWriterTest : public ::testing::Test {
 protected:
  ServiceWriterTest() { Watch(); }

  // Before every operation on either map, the maps as they are then (the
  // state after the previous operation) must be consistent; the operation
  // is recorded, and fails if `fail_slots_` says so.
  void Watch() {
    services_->FailWhen([this](bool update, const shunt_svc_key& k) {
      CheckConsistent();
      timeline_.push_back(
          absl::StrCat("svc", update ? "+ " : "- ", lib::Ipv4String(k.vip), ":", ntohs(k.port)));
      return false;
    });
    slots_->FailWhen([this](bool update, const shunt_slot_key& k) {
      CheckConsistent();
      timeline_.push_back(absl::StrCat("slot", update ? "+ " : "- ", k.table, "/", k.index));
      return fail_slots_ && fail_slots_(update, k);
    });
  }

  // Every service entry points at a whole table (or carries it inline).
  void CheckConsistent() const {
    for (const auto& [k, v] : services_->entries()) {
      if (v.table == 0) {
        EXPECT_LE(v.slots, SHUNT_SVC_INLINE) << lib::Ipv4String(k.vip);
        continue;
      }
      for (uint32_t i = 0; i < v.slots; ++i)
        EXPECT_TRUE(slots_->Lookup(shunt_slot_key{v.table, i}).ok())
            << lib::Ipv4String(k.vip) << " points at table " << v.table << " without slot " << i
            << " (after: " << (timeline_.empty() ? "nothing" : timeline_.back()) << ")";
    }
  }

  shunt_svc_value Value(const char* vip, uint16_t port = 80) const {
    auto v = services_->Lookup(SvcKey(vip, port));
    EXPECT_TRUE(v.ok()) << vip << ": " << v.status();
    return v.ok() ? *v : shunt_svc_value{};
  }

  // What a connect() to `vip` would choose among, read from the maps.
  std::vector<std::pair<uint32_t, uint16_t>> Seen(const char* vip, uint16_t port = 80) const {
    const shunt_svc_value v = Value(vip, port);
    std::vector<std::pair<uint32_t, uint16_t>> out;
    for (uint32_t i = 0; i < v.slots; ++i) {
      if (v.table == 0) {
        out.emplace_back(v.inline_slots[i].ip, v.inline_slots[i].port);
        continue;
      }
      auto b = slots_->Lookup(shunt_slot_key{v.table, i});
      if (!b.ok()) {
        ADD_FAILURE() << "no slot " << i << " in table " << v.table;
        continue;
      }
      out.emplace_back(b->ip, b->port);
    }
    return out;
  }

  std::vector<std::string> Slots(uint32_t table, uint32_t n, bool update) const {
    std::vector<std::string> out;
    for (uint32_t i = 0; i < n; ++i)
      out.push_back(absl::StrCat("slot", update ? "+ " : "- ", table, "/", i));
    return out;
  }

  void Clear() {
    services_->ClearJournal();
    slots_->ClearJournal();
    timeline_.clear();
  }

  std::shared_ptr<ServiceMap> services_ = std::make_shared<ServiceMap>("services");
  std::shared_ptr<SlotMap> slots_ = std::make_shared<SlotMap>("slots");
  std::vector<std::string> timeline_;
  std::function<bool(bool, const shunt_slot_key&)> fail_slots_;
  ServiceWriter writer_{services_, slots_};
};

TEST_F(ServiceWriterTest, NewServiceWritesItsWholeTableBeforeTheEntry) {
  const Plan plan{.entries = {Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2")}};
  lib::DiffReport r = writer_.Apply(plan);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.written, 7);

  const shunt_svc_value v = Value("10.96.0.1");
  ASSERT_NE(v.table, 0u);
  EXPECT_EQ(v.slots, 6u);
  EXPECT_EQ(v.lb, SHUNT_LB_RANDOM);
  std::vector<std::string> want = Slots(v.table, 6, true);
  want.push_back("svc+ 10.96.0.1:80");
  EXPECT_THAT(timeline_, ElementsAreArray(want));
  EXPECT_EQ(Seen("10.96.0.1"), Want(plan.entries[0]));
  EXPECT_EQ(slots_->size(), 6u);
  EXPECT_EQ(writer_.services(), 1u);
}

TEST_F(ServiceWriterTest, ChangedServiceSwitchesToANewWholeTableThenDeletesTheOld) {
  writer_.Apply({.entries = {Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2")}});
  const uint32_t old_table = Value("10.96.0.1").table;
  Clear();

  const Plan changed{.entries = {Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.3")}};
  lib::DiffReport r = writer_.Apply(changed);
  EXPECT_THAT(r.errors, IsEmpty());
  const shunt_svc_value v = Value("10.96.0.1");
  EXPECT_NE(v.table, old_table);
  EXPECT_NE(v.table, 0u);
  std::vector<std::string> want = Slots(v.table, 6, true);
  want.push_back("svc+ 10.96.0.1:80");
  for (const std::string& s : Slots(old_table, 6, false)) want.push_back(s);
  EXPECT_THAT(timeline_, ElementsAreArray(want));
  EXPECT_EQ(Seen("10.96.0.1"), Want(changed.entries[0]));
  EXPECT_EQ(slots_->size(), 6u) << "the old table must be gone";
  EXPECT_EQ(r.written, 7);
  EXPECT_EQ(r.deleted, 6);
}

TEST_F(ServiceWriterTest, BalancerChangeAloneIsAChange) {
  ServiceEntry e = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2");
  writer_.Apply({.entries = {e}});
  e.lb = SHUNT_LB_P2C_EWMA;
  lib::DiffReport r = writer_.Apply({.entries = {e}});
  EXPECT_EQ(r.unchanged, 0);
  EXPECT_EQ(Value("10.96.0.1").lb, SHUNT_LB_P2C_EWMA);
}

TEST_F(ServiceWriterTest, UnchangedServicesCostNoWrites) {
  const Plan plan{.entries = {Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2"),
                              Entry("shop/db", "10.96.0.2", {B("10.0.0.9", 5432)})}};
  writer_.Apply(plan);
  Clear();
  lib::DiffReport r = writer_.Apply(plan);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_EQ(r.written, 0);
  EXPECT_EQ(r.deleted, 0);
  EXPECT_THAT(timeline_, IsEmpty());
  EXPECT_THAT(services_->journal(), IsEmpty());
  EXPECT_THAT(slots_->journal(), IsEmpty());
}

TEST_F(ServiceWriterTest, RemovedServiceLosesItsEntryBeforeItsTable) {
  const ServiceEntry db = Entry("shop/db", "10.96.0.2", {B("10.0.0.9", 5432)});
  writer_.Apply({.entries = {Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2"), db}});
  const uint32_t table = Value("10.96.0.1").table;
  Clear();

  lib::DiffReport r = writer_.Apply({.entries = {db}});
  EXPECT_THAT(r.errors, IsEmpty());
  std::vector<std::string> want = {"svc- 10.96.0.1:80"};
  for (const std::string& s : Slots(table, 6, false)) want.push_back(s);
  EXPECT_THAT(timeline_, ElementsAreArray(want));
  EXPECT_FALSE(services_->Lookup(SvcKey("10.96.0.1")).ok());
  EXPECT_EQ(slots_->size(), 0u);
  EXPECT_EQ(Seen("10.96.0.2"), Want(db)) << "the other service is untouched";
  EXPECT_EQ(writer_.services(), 1u);
  EXPECT_EQ(writer_.SvcId(Ipv4Be("10.96.0.1"), 80, 6), 0u);
}

TEST_F(ServiceWriterTest, SmallTablesLiveInTheServiceEntry) {
  // Exactly SHUNT_SVC_INLINE slots: inline, no slot written.
  const ServiceEntry four =
      Entry("shop/web", "10.96.0.1", {B("10.0.0.1"), B("10.0.0.2"), B("10.0.0.3"), B("10.0.0.4")});
  ASSERT_EQ(four.slots.size(), SHUNT_SVC_INLINE);
  lib::DiffReport r = writer_.Apply({.entries = {four}});
  EXPECT_EQ(r.written, 1);
  EXPECT_THAT(slots_->journal(), IsEmpty());
  EXPECT_EQ(Value("10.96.0.1").table, 0u);
  EXPECT_EQ(Value("10.96.0.1").slots, 4u);
  EXPECT_EQ(Seen("10.96.0.1"), Want(four));

  // One more: a table. Back to two: inline again, and the table goes after
  // the entry stopped pointing at it.
  ServiceEntry five = four;
  five.backends.push_back(B("10.0.0.5"));
  five.slots.push_back(4);
  writer_.Apply({.entries = {five}});
  const uint32_t table = Value("10.96.0.1").table;
  EXPECT_NE(table, 0u);
  EXPECT_EQ(slots_->size(), 5u);
  EXPECT_EQ(Seen("10.96.0.1"), Want(five));

  Clear();
  const ServiceEntry two = Entry("shop/web", "10.96.0.1", {B("10.0.0.1"), B("10.0.0.2")});
  writer_.Apply({.entries = {two}});
  std::vector<std::string> want = {"svc+ 10.96.0.1:80"};
  for (const std::string& s : Slots(table, 5, false)) want.push_back(s);
  EXPECT_THAT(timeline_, ElementsAreArray(want));
  EXPECT_EQ(Value("10.96.0.1").table, 0u);
  EXPECT_EQ(Seen("10.96.0.1"), Want(two));
  EXPECT_EQ(slots_->size(), 0u);

  // No ready backend: an entry with no slots (connect() refused), not a
  // missing entry (which would let the connection through to the VIP).
  writer_.Apply({.entries = {Entry("shop/web", "10.96.0.1", {})}});
  EXPECT_EQ(Value("10.96.0.1").slots, 0u);
}

TEST_F(ServiceWriterTest, LoadAdoptsAnEarlierAgentsMapsAndRemovesAnOrphanTable) {
  const ServiceEntry web = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2");
  const ServiceEntry db = Entry("shop/db", "10.96.0.2", {B("10.0.0.9", 5432)});
  const ServiceEntry cache = Big("shop/cache", "10.96.0.3", "10.0.0.7", "10.0.0.8");
  {
    ServiceWriter earlier(services_, slots_);
    ASSERT_THAT(earlier.Apply({.entries = {web, db, cache}}).errors, IsEmpty());
  }
  const uint32_t web_table = Value("10.96.0.1").table;
  const uint32_t web_id = Value("10.96.0.1").svc_id;
  const uint32_t db_id = Value("10.96.0.2").svc_id;
  // The earlier agent stopped after writing a new table for web, before
  // pointing web at it.
  for (uint32_t i = 0; i < 3; ++i)
    ASSERT_TRUE(
        slots_->Update(shunt_slot_key{90, i}, shunt_backend{Ipv4Be("10.0.0.5"), htons(80), 0})
            .ok());
  Clear();

  ServiceWriter writer(services_, slots_);
  ASSERT_TRUE(writer.Load().ok());
  EXPECT_EQ(writer.services(), 3u);
  EXPECT_THAT(timeline_, ElementsAre("slot- 90/0", "slot- 90/1", "slot- 90/2"));
  EXPECT_EQ(slots_->size(), 12u);
  EXPECT_EQ(writer.SvcId(Ipv4Be("10.96.0.1"), 80, 6), web_id);

  // The same plan: nothing to do.
  Clear();
  lib::DiffReport same = writer.Apply({.entries = {web, db, cache}});
  EXPECT_EQ(same.unchanged, 3);
  EXPECT_THAT(timeline_, IsEmpty());

  // A difference: web changes (to a table id no earlier table had), cache
  // goes, db stays.
  Clear();
  const ServiceEntry web2 = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.3");
  lib::DiffReport r = writer.Apply({.entries = {web2, db}});
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.unchanged, 1);
  const shunt_svc_value v = Value("10.96.0.1");
  EXPECT_GT(v.table, 90u);
  EXPECT_EQ(v.svc_id, web_id);
  EXPECT_EQ(Seen("10.96.0.1"), Want(web2));
  EXPECT_EQ(Value("10.96.0.2").svc_id, db_id);
  EXPECT_FALSE(services_->Lookup(SvcKey("10.96.0.3")).ok());
  EXPECT_EQ(slots_->size(), 6u) << "web's old table and cache's table must be gone";
  EXPECT_FALSE(slots_->Lookup(shunt_slot_key{web_table, 0}).ok());

  // A new service gets an id no adopted service has.
  writer.Apply({.entries = {web2, db, Entry("shop/new", "10.96.0.4", {B("10.0.0.4")})}});
  const uint32_t new_id = Value("10.96.0.4").svc_id;
  EXPECT_NE(new_id, 0u);
  EXPECT_NE(new_id, web_id);
  EXPECT_NE(new_id, db_id);
}

TEST_F(ServiceWriterTest, FullSlotsMapIsAnErrorAndTheOldTableStaysInForce) {
  const ServiceEntry web = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2");
  writer_.Apply({.entries = {web}});
  const shunt_svc_value before = Value("10.96.0.1");
  slots_->set_max_entries(8);  // room for 2 of the new table's 6 slots

  const ServiceEntry web2 = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.3");
  lib::DiffReport r = writer_.Apply({.entries = {web2}});
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0], HasSubstr("shop/web"));
  EXPECT_THAT(r.errors[0], HasSubstr("is full"));
  EXPECT_EQ(r.written, 0);
  const shunt_svc_value after = Value("10.96.0.1");
  EXPECT_EQ(std::memcmp(&before, &after, sizeof(before)), 0);
  EXPECT_EQ(Seen("10.96.0.1"), Want(web));
  EXPECT_EQ(slots_->size(), 6u) << "the new table's written part must go";

  // A new service that does not fit is not published at all.
  r = writer_.Apply({.entries = {web2, Big("shop/api", "10.96.0.5", "10.0.0.4", "10.0.0.5")}});
  EXPECT_THAT(r.errors, SizeIs(2));
  EXPECT_FALSE(services_->Lookup(SvcKey("10.96.0.5")).ok());

  // Room again: the next Apply gets there.
  slots_->set_max_entries(100);
  r = writer_.Apply({.entries = {web2}});
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(Seen("10.96.0.1"), Want(web2));
  EXPECT_EQ(Value("10.96.0.1").svc_id, before.svc_id);
  EXPECT_EQ(slots_->size(), 6u);
}

TEST_F(ServiceWriterTest, FailedServiceWriteKeepsTheOldTableAndDropsTheNew) {
  const ServiceEntry web = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2");
  writer_.Apply({.entries = {web}});
  services_->set_max_entries(1);
  // A second service does not fit in the services map: its table goes.
  lib::DiffReport r =
      writer_.Apply({.entries = {web, Big("shop/api", "10.96.0.5", "10.0.0.4", "10.0.0.5")}});
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0], HasSubstr("shop/api 10.96.0.5:80"));
  EXPECT_EQ(slots_->size(), 6u);
  EXPECT_EQ(Seen("10.96.0.1"), Want(web));
  EXPECT_EQ(writer_.services(), 1u);
}

TEST_F(ServiceWriterTest, SvcIdIsStablePerServicePortAndProtocol) {
  ServiceEntry web = Big("shop/web", "10.96.0.1", "10.0.0.1", "10.0.0.2");
  ServiceEntry web_udp = Entry("shop/web", "10.96.0.1", {B("10.0.0.1")});
  web_udp.proto = 17;
  const ServiceEntry db = Entry("shop/db", "10.96.0.2", {B("10.0.0.9", 5432)});
  writer_.Apply({.entries = {web, web_udp, db}});
  const uint32_t id = writer_.SvcId(Ipv4Be("10.96.0.1"), 80, 6);
  const uint32_t udp_id = writer_.SvcId(Ipv4Be("10.96.0.1"), 80, 17);
  const uint32_t db_id = writer_.SvcId(Ipv4Be("10.96.0.2"), 80, 6);
  EXPECT_NE(id, 0u);
  EXPECT_NE(id, udp_id);
  EXPECT_NE(id, db_id);
  EXPECT_NE(udp_id, db_id);
  EXPECT_EQ(Value("10.96.0.1").svc_id, id);

  // New backends, then inline, then gone and back, then a new ClusterIP:
  // one service port, one id.
  web = Big("shop/web", "10.96.0.1", "10.0.0.3", "10.0.0.4");
  writer_.Apply({.entries = {web, web_udp, db}});
  EXPECT_EQ(Value("10.96.0.1").svc_id, id);
  web = Entry("shop/web", "10.96.0.1", {B("10.0.0.3")});
  writer_.Apply({.entries = {web, web_udp, db}});
  EXPECT_EQ(Value("10.96.0.1").svc_id, id);
  writer_.Apply({.entries = {web_udp, db}});
  EXPECT_EQ(writer_.SvcId(Ipv4Be("10.96.0.1"), 80, 6), 0u);
  writer_.Apply({.entries = {web, web_udp, db}});
  EXPECT_EQ(Value("10.96.0.1").svc_id, id);
  web.vip_be = Ipv4Be("10.96.0.9");
  writer_.Apply({.entries = {db, web}});
  EXPECT_EQ(Value("10.96.0.9").svc_id, id);
  EXPECT_EQ(writer_.SvcId(Ipv4Be("10.96.0.9"), 80, 6), id);
  EXPECT_EQ(Value("10.96.0.2").svc_id, db_id);
}

// Random plans and random failed slot writes: at no moment does a service
// point at an incomplete table (checked before every map operation), and a
// clean Apply always leaves exactly the plan in the maps, with no slot left
// over.
TEST_F(ServiceWriterTest, NeverPointsAtAnIncompleteTableUnderFailures) {
  std::mt19937 rng(12);
  const char* vips[] = {"10.96.0.1", "10.96.0.2", "10.96.0.3", "10.96.0.4"};
  const char* ips[] = {"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"};
  for (int round = 0; round < 200; ++round) {
    Plan plan;
    for (int s = 0; s < 4; ++s) {
      if (rng() % 4 == 0) continue;
      std::vector<Backend> backends;
      for (const char* ip : ips)
        if (rng() % 2) backends.push_back(B(ip));
      std::vector<uint32_t> slots;
      const uint32_t n = backends.empty() ? 0 : rng() % 9;
      for (uint32_t i = 0; i < n; ++i) slots.push_back(rng() % backends.size());
      ServiceEntry e = Entry(absl::StrCat("shop/s", s), vips[s], backends, {});
      e.slots = slots;
      plan.entries.push_back(e);
    }
    const bool faulty = round % 2 == 0;
    fail_slots_ = [&](bool update, const shunt_slot_key&) {
      return faulty && update && rng() % 5 == 0;
    };
    lib::DiffReport r = writer_.Apply(plan);
    CheckConsistent();
    if (faulty) continue;
    ASSERT_THAT(r.errors, IsEmpty()) << "round " << round;
    size_t in_tables = 0;
    for (const ServiceEntry& e : plan.entries) {
      const char* vip = vips[e.service.back() - '0'];
      EXPECT_EQ(Seen(vip), Want(e)) << "round " << round << " " << e.service;
      if (e.slots.size() > SHUNT_SVC_INLINE) in_tables += e.slots.size();
    }
    EXPECT_EQ(services_->size(), plan.entries.size()) << "round " << round;
    ASSERT_EQ(slots_->size(), in_tables) << "round " << round << ": slots left over";
  }
}

}  // namespace
}  // namespace shunt::services
