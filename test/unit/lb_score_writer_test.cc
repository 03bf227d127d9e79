// LbScoreWriter (agent/services/lb_score_writer.h) over an in-memory map:
// the kernel's latency scores follow the LatencyScorer for the backends of
// p2c-ewma services only, unchanged scores cost nothing, scores of backends
// no such service has any more go, and an earlier agent's entries are taken
// over.
#include "agent/services/lb_score_writer.h"

#include <arpa/inet.h>

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "agent/lib/memory_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shunt/abi/service.h"
#include "test/unit/ipv4_util.h"

namespace shunt::services::lb_score_test {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::testing::UnorderedElementsAre;

using ScoreMap = lib::MemoryMap<shunt_backend, shunt_lb_score>;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kT0 = 100'000 * kMs;

using test_util::Ipv4Be;

const BackendAddr kA{Ipv4Be("10.0.0.1"), 8080};
const BackendAddr kB{Ipv4Be("10.0.0.2"), 8080};
const BackendAddr kC{Ipv4Be("10.0.0.3"), 9090};
const BackendAddr kD{Ipv4Be("10.0.0.4"), 8080};

ServiceEntry Entry(const char* service, const char* vip, uint8_t lb,
                   std::vector<BackendAddr> backends) {
  ServiceEntry e{.service = service, .port_name = "http", .port = 80, .lb = lb};
  in_addr a{};
  inet_pton(AF_INET, vip, &a);
  e.vip_be = a.s_addr;
  for (const BackendAddr& b : backends) {
    e.slots.push_back(static_cast<uint32_t>(e.backends.size()));
    e.backends.push_back({.ip_be = b.ip_be, .port = b.port, .service = service});
  }
  return e;
}

// The key the kernel looks the score up by: port in network order.
shunt_backend Key(const BackendAddr& b) {
  shunt_backend k{};
  k.ip = b.ip_be;
  k.port = htons(b.port);
  return k;
}

class LbScoreWriterTest : public ::testing::Test {
 protected:
  // The map as {backend, score}, in the agent's terms.
  std::map<BackendAddr, uint32_t> Scores() const {
    std::map<BackendAddr, uint32_t> out;
    for (const auto& [k, v] : map_->entries()) out[{k.ip, ntohs(k.port)}] = v.score;
    return out;
  }
  // The journal as (update?, backend).
  std::vector<std::pair<bool, BackendAddr>> Journal() const {
    std::vector<std::pair<bool, BackendAddr>> out;
    for (const auto& op : map_->journal())
      out.push_back({op.update, {op.key.ip, ntohs(op.key.port)}});
    return out;
  }

  std::shared_ptr<ScoreMap> map_ = std::make_shared<ScoreMap>("lb_scores");
  LbScoreWriter writer_{map_};
  LatencyScorer scorer_;
};

TEST_F(LbScoreWriterTest, ScoresOnlyTheBackendsOfLatencyBalancedServices) {
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  scorer_.Observe(kB, kT0, 7 * kMs, 1, 0);
  scorer_.Observe(kC, kT0, 5 * kMs, 1, 0);
  const Plan plan{.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB}),
                              Entry("shop/db", "10.96.0.2", SHUNT_LB_RANDOM, {kC})}};
  lib::DiffReport r = writer_.Write(plan, scorer_, kT0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.written, 2);
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kA, 3000u), Pair(kB, 7000u)));
  // The kernel's key: port in network order, padding zero.
  auto a = map_->Lookup(Key(kA));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->score, 3000u);
  EXPECT_EQ(a->pad, 0u);
}

TEST_F(LbScoreWriterTest, OnlyChangedScoresAreWritten) {
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  scorer_.Observe(kB, kT0, 7 * kMs, 1, 0);
  const Plan plan{.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB, kD})}};
  writer_.Write(plan, scorer_, kT0);
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kA, 3000u), Pair(kB, 7000u), Pair(kD, 0u)));

  map_->ClearJournal();
  lib::DiffReport same = writer_.Write(plan, scorer_, kT0);
  EXPECT_EQ(same.unchanged, 3);
  EXPECT_EQ(same.written, 0);
  EXPECT_THAT(map_->journal(), IsEmpty());

  // B slows down; A's and D's scores at the same moment are what they were.
  scorer_.Observe(kB, kT0, 20 * kMs, 1, 0);
  lib::DiffReport r = writer_.Write(plan, scorer_, kT0);
  EXPECT_EQ(r.written, 1);
  EXPECT_EQ(r.unchanged, 2);
  EXPECT_THAT(Journal(), ElementsAre(Pair(true, kB)));
  EXPECT_EQ(Scores().at(kB), 20000u);

  // Time passes: measured scores decay and are rewritten; D, never measured,
  // stays 0 and is not.
  map_->ClearJournal();
  writer_.Write(plan, scorer_, kT0 + 2000 * kMs);
  EXPECT_THAT(Journal(), UnorderedElementsAre(Pair(true, kA), Pair(true, kB)));
  EXPECT_LT(Scores().at(kA), 3000u);
  EXPECT_EQ(Scores().at(kA), scorer_.Score(kA, kT0 + 2000 * kMs));
}

TEST_F(LbScoreWriterTest, ScoresOfBackendsNoLatencyBalancedServiceUsesAreRemoved) {
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  scorer_.Observe(kB, kT0, 7 * kMs, 1, 0);
  scorer_.Observe(kC, kT0, 5 * kMs, 1, 0);
  writer_.Write({.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB}),
                             Entry("shop/api", "10.96.0.3", SHUNT_LB_P2C_EWMA, {kB, kC})}},
                scorer_, kT0);
  EXPECT_THAT(Scores(), SizeIs(3));

  // A leaves web; api turns to random slots. B stays: web still has it.
  map_->ClearJournal();
  lib::DiffReport r =
      writer_.Write({.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kB}),
                                 Entry("shop/api", "10.96.0.3", SHUNT_LB_RANDOM, {kB, kC})}},
                    scorer_, kT0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.deleted, 2);
  EXPECT_THAT(Journal(), UnorderedElementsAre(Pair(false, kA), Pair(false, kC)));
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kB, 7000u)));

  // No latency-balanced service left: an empty map.
  writer_.Write({.entries = {Entry("shop/api", "10.96.0.3", SHUNT_LB_RANDOM, {kB, kC})}}, scorer_,
                kT0);
  EXPECT_THAT(Scores(), IsEmpty());
}

TEST_F(LbScoreWriterTest, LoadTakesOverAnEarlierAgentsScores) {
  // An earlier agent scored A (as we would now), B (differently) and D
  // (a backend gone meanwhile).
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  scorer_.Observe(kB, kT0, 7 * kMs, 1, 0);
  ASSERT_TRUE(map_->Update(Key(kA), {3000, 0}).ok());
  ASSERT_TRUE(map_->Update(Key(kB), {100, 0}).ok());
  ASSERT_TRUE(map_->Update(Key(kD), {5, 0}).ok());
  map_->ClearJournal();

  ASSERT_TRUE(writer_.Load().ok());
  EXPECT_THAT(map_->journal(), IsEmpty());
  lib::DiffReport r = writer_.Write(
      {.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB})}}, scorer_, kT0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.unchanged, 1);
  EXPECT_THAT(Journal(), UnorderedElementsAre(Pair(true, kB), Pair(false, kD)));
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kA, 3000u), Pair(kB, 7000u)));
}

TEST_F(LbScoreWriterTest, FullMapIsReportedAndRetriedByTheNextWrite) {
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  scorer_.Observe(kB, kT0, 7 * kMs, 1, 0);
  const Plan plan{.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB})}};
  map_->set_max_entries(1);
  lib::DiffReport r = writer_.Write(plan, scorer_, kT0);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0], HasSubstr("is full"));
  EXPECT_EQ(r.written, 1);
  EXPECT_THAT(Scores(), SizeIs(1));

  map_->set_max_entries(10);
  r = writer_.Write(plan, scorer_, kT0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.written, 1);
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kA, 3000u), Pair(kB, 7000u)));
}

TEST_F(LbScoreWriterTest, FailedDeleteIsReportedAndRetriedByTheNextWrite) {
  scorer_.Observe(kA, kT0, 3 * kMs, 1, 0);
  writer_.Write({.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kA, kB})}}, scorer_,
                kT0);
  map_->FailWhen([](bool update, const shunt_backend&) { return !update; });
  const Plan plan{.entries = {Entry("shop/web", "10.96.0.1", SHUNT_LB_P2C_EWMA, {kB})}};
  lib::DiffReport r = writer_.Write(plan, scorer_, kT0);
  ASSERT_THAT(r.errors, SizeIs(1));
  EXPECT_THAT(r.errors[0], HasSubstr("10.0.0.1:8080"));
  EXPECT_TRUE(map_->Lookup(Key(kA)).ok());

  map_->FailWhen(nullptr);
  r = writer_.Write(plan, scorer_, kT0);
  EXPECT_THAT(r.errors, IsEmpty());
  EXPECT_EQ(r.deleted, 1);
  EXPECT_THAT(Scores(), UnorderedElementsAre(Pair(kB, 0u)));
}

}  // namespace
}  // namespace shunt::services::lb_score_test
