// ObjectStore: documents from any source -> snapshots, with the rules of
// last-good retention, duplicates, IP ownership and one split per root.
#include "agent/model/object_store.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace shunt::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Json = nlohmann::json;

// A Pod as the API server would send it.
Json PodDoc(const std::string& name, const std::string& ip, const std::string& sa = "web") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "demo"}}},
          {"spec", {{"nodeName", "node-a"}, {"serviceAccountName", sa}}},
          {"status", {{"podIP", ip}}}};
}

Document Doc(Json j) { return Document{.doc = std::move(j)}; }

std::vector<std::string> Strings(const std::vector<Problem>& ps) {
  std::vector<std::string> out;
  for (const auto& p : ps) out.push_back(p.ToString());
  return out;
}

TEST(ObjectStoreTest, GenerationCountsPublishedChangesOnly) {
  ObjectStore store;
  EXPECT_EQ(store.current()->generation, 0u);
  store.SetOrigin("pods", {});
  auto first = store.Publish();
  EXPECT_EQ(first->generation, 1u);
  // Nothing changed: the same snapshot, the same generation.
  EXPECT_EQ(store.Publish(), first);
  store.Upsert("pods", Doc(PodDoc("a", "10.0.0.1")));
  EXPECT_TRUE(store.dirty());
  auto second = store.Publish();
  EXPECT_EQ(second->generation, 2u);
  ASSERT_EQ(second->pods.size(), 1u);
  EXPECT_EQ(second->pods[0].Key(), "demo/a");
  EXPECT_EQ(first->pods.size(), 0u) << "published snapshots never change";
}

TEST(ObjectStoreTest, AnInvalidUpdateKeepsTheLastGoodVersion) {
  ObjectStore store;
  store.Upsert("pods", Doc(PodDoc("a", "10.0.0.1")));
  store.Upsert("pods", Doc(PodDoc("a", "not-an-ip")));
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].ip, "10.0.0.1");
  EXPECT_THAT(Strings(snap->problems),
              ElementsAre("Pod demo/a: status.podIP 'not-an-ip' is not an IPv4 address; keeping "
                          "its last good version"));
  // A good version again replaces it, and the problem goes.
  store.Upsert("pods", Doc(PodDoc("a", "10.0.0.9")));
  snap = store.Publish();
  EXPECT_EQ(snap->pods[0].ip, "10.0.0.9");
  EXPECT_THAT(snap->problems, IsEmpty());
}

TEST(ObjectStoreTest, DeleteWithdrawsTheObject) {
  ObjectStore store;
  store.SetOrigin("pods", {Doc(PodDoc("a", "10.0.0.1")), Doc(PodDoc("b", "10.0.0.2"))});
  store.Delete("pods", "Pod", "demo", "a");
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].name, "b");
  // Deleting what is not there changes nothing.
  store.Delete("pods", "Pod", "demo", "a");
  EXPECT_FALSE(store.dirty());
}

TEST(ObjectStoreTest, KeepOriginKeepsItsObjectsAndReportsWhy) {
  ObjectStore store;
  store.SetOrigin("a.yaml", {Doc(PodDoc("a", "10.0.0.1")), Doc(Json::array())});
  store.KeepOrigin("a.yaml", {{{.file = "a.yaml", .line = 3}, "YAML syntax error: x"}});
  auto snap = store.Publish();
  EXPECT_EQ(snap->pods.size(), 1u);
  EXPECT_THAT(Strings(snap->problems), ElementsAre("a.yaml:3: YAML syntax error: x"));
  store.RemoveOrigin("a.yaml");
  EXPECT_THAT(store.Publish()->pods, IsEmpty());
}

TEST(ObjectStoreTest, ASourceErrorKeepsTheObjectItNames) {
  ObjectStore store;
  store.SetOrigin("a.yaml", {Doc(PodDoc("a", "10.0.0.1"))});
  Document broken{.where = {.file = "a.yaml", .line = 1, .kind = "Pod", .name = "a"},
                  .error = absl::InvalidArgumentError("line 5: a value is not valid UTF-8")};
  broken.where.namespace_ = "demo";
  std::vector<Document> docs;
  docs.push_back(std::move(broken));
  store.SetOrigin("a.yaml", std::move(docs));
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_THAT(Strings(snap->problems),
              ElementsAre("a.yaml:1 Pod demo/a: line 5: a value is not valid UTF-8; keeping its "
                          "last good version"));
}

TEST(ObjectStoreTest, FirstOriginWinsDuplicatesAndPodIps) {
  ObjectStore store;
  store.SetOrigin("b", {Doc(PodDoc("a", "10.0.0.9")), Doc(PodDoc("c", "10.0.0.1"))});
  store.SetOrigin("a", {Doc(PodDoc("a", "10.0.0.1"))});
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].ip, "10.0.0.1");
  EXPECT_THAT(
      snap->problems,
      ElementsAre(::testing::Field(&Problem::reason, HasSubstr("is already defined in a")),
                  ::testing::Field(&Problem::reason, HasSubstr("is already an IP of Pod demo/a"))));
  EXPECT_EQ(snap->origins, 2);
  EXPECT_EQ(snap->documents, 3);
}

// A remote pod object repeating a local pod's IP must not take its identity,
// whichever origin the source reads first (the kube source reads other
// nodes' pods before this node's).
TEST(ObjectStoreTest, ALocalPodKeepsItsIpAgainstARemoteClaim) {
  ObjectStore store;
  store.SetLocalNode("n1");
  auto remote = PodDoc("impostor", "10.0.0.1");
  remote["spec"]["nodeName"] = "n2";
  auto local = PodDoc("victim", "10.0.0.1");
  local["spec"]["nodeName"] = "n1";
  store.SetOrigin("kube:pods-elsewhere", {Doc(remote)});
  store.SetOrigin("kube:pods-here", {Doc(local)});
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].name, "victim");
  EXPECT_THAT(Strings(snap->problems),
              ElementsAre(HasSubstr("Pod demo/impostor: status.podIP 10.0.0.1 is already an IP "
                                    "of Pod demo/victim; this pod is ignored")));
  // Between two remote pods, the first seen keeps it, as before.
  ObjectStore other;
  other.SetLocalNode("n1");
  auto second = PodDoc("second", "10.0.0.1");
  second["spec"]["nodeName"] = "n3";
  other.SetOrigin("a", {Doc(remote), Doc(second)});
  auto snap2 = other.Publish();
  ASSERT_EQ(snap2->pods.size(), 1u);
  EXPECT_EQ(snap2->pods[0].name, "impostor");
}

TEST(ObjectStoreTest, APodRepeatingAnotherPodsIpv6AddressIsIgnored) {
  ObjectStore store;
  auto first = PodDoc("a", "10.0.0.1");
  first["status"]["podIPs"] = {{{"ip", "10.0.0.1"}}, {{"ip", "fd00::1"}}};
  auto second = PodDoc("b", "10.0.0.2");
  // The same address spelled otherwise.
  second["status"]["podIPs"] = {{{"ip", "10.0.0.2"}}, {{"ip", "fd00:0::0:1"}}};
  store.SetOrigin("x", {Doc(first), Doc(second)});
  auto snap = store.Publish();
  ASSERT_EQ(snap->pods.size(), 1u);
  EXPECT_EQ(snap->pods[0].name, "a");
  EXPECT_THAT(Strings(snap->problems),
              ElementsAre(HasSubstr("Pod demo/b: status.podIPs fd00:0::0:1 is already an IP of "
                                    "Pod demo/a; this pod is ignored")));
}

TEST(ObjectStoreTest, UnknownKindsAreNoticesAndBadVersionsProblems) {
  ObjectStore store;
  store.SetOrigin(
      "x", {Doc({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}}),
            Doc({{"apiVersion", "split.smi-spec.io/v9"},
                 {"kind", "TrafficSplit"},
                 {"metadata", {{"name", "s"}}}}),
            Doc({{"kind", "Pod"}}), Doc("text")});
  auto snap = store.Publish();
  EXPECT_THAT(
      Strings(snap->notices),
      ElementsAre("ConfigMap c: kind ConfigMap (v1) is not handled by this version; skipped"));
  EXPECT_THAT(Strings(snap->problems),
              ElementsAre("TrafficSplit default/s: apiVersion split.smi-spec.io/v9 of TrafficSplit "
                          "is not supported (use split.smi-spec.io/v1alpha4, v1alpha3, v1alpha2 "
                          "or v1alpha1)",
                          "Pod: apiVersion is missing",
                          "object: not a Kubernetes object (expected a mapping)"));
}

TEST(ObjectStoreTest, OneSplitPerRootTheOldestWins) {
  auto split = [](const std::string& name, const char* created) {
    Json j = {
        {"apiVersion", "split.smi-spec.io/v1alpha4"},
        {"kind", "TrafficSplit"},
        {"metadata", {{"name", name}, {"namespace", "shop"}}},
        {"spec", {{"service", "web"}, {"backends", {{{"service", "web-v1"}, {"weight", 1}}}}}}};
    if (created != nullptr) j["metadata"]["creationTimestamp"] = created;
    return Doc(std::move(j));
  };
  ObjectStore store;
  store.SetOrigin("splits", {split("new", "2024-02-01T00:00:00Z"), split("none", nullptr),
                             split("old", "2024-01-01T00:00:00Z")});
  auto snap = store.Publish();
  ASSERT_EQ(snap->traffic_splits.size(), 1u);
  EXPECT_EQ(snap->traffic_splits[0].name, "old");
  EXPECT_EQ(snap->problems.size(), 2u);
}

// Found by fuzzing (test/fuzz manifest_yaml): an invalid copy of an object
// took its valid sibling's version as its "last good version" when the
// origin was read a second time, so the same text gave one more problem (a
// duplicate that was not there before) and the invalid copy in force.
TEST(ObjectStoreTest, AnInvalidCopyBesideAValidOneBorrowsNothingWhenReadAgain) {
  ObjectStore store;
  auto docs = [] {
    std::vector<Document> d;
    d.push_back(Doc(PodDoc("a", "not-an-ip")));
    d.push_back(Doc(PodDoc("a", "10.0.0.1")));
    return d;
  };
  store.SetOrigin("pods.yaml", docs());
  const auto first = store.Publish();
  store.SetOrigin("pods.yaml", docs());
  const auto second = store.Publish();
  EXPECT_EQ(Strings(second->problems), Strings(first->problems));
  EXPECT_THAT(Strings(second->problems),
              ElementsAre("Pod demo/a: status.podIP 'not-an-ip' is not an IPv4 address"));
  ASSERT_EQ(second->pods.size(), 1u);
  EXPECT_EQ(second->pods[0].ip, "10.0.0.1");
  // Alone in its origin, an invalid version still keeps the last good one.
  std::vector<Document> bad;
  bad.push_back(Doc(PodDoc("a", "not-an-ip")));
  store.SetOrigin("pods.yaml", std::move(bad));
  const auto third = store.Publish();
  ASSERT_EQ(third->pods.size(), 1u);
  EXPECT_EQ(third->pods[0].ip, "10.0.0.1");
  EXPECT_THAT(Strings(third->problems),
              ElementsAre("Pod demo/a: status.podIP 'not-an-ip' is not an IPv4 address; keeping "
                          "its last good version"));
}

}  // namespace
}  // namespace shunt::model
