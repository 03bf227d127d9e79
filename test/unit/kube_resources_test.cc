#include <gtest/gtest.h>

#include "agent/model/pod.h"
#include "agent/source/kube/resources.h"

namespace shunt::source::kube {
namespace {

nlohmann::json FullPod() {
  return nlohmann::json::parse(R"({
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": "web-7d4b9-x2", "namespace": "shop", "uid": "u-1",
                 "resourceVersion": "77", "labels": {"app": "web", "pod-template-hash": "7d4b9"},
                 "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9", "controller": true}],
                 "managedFields": [{"manager": "kubelet"}],
                 "annotations": {"big": "x"}},
    "spec": {"nodeName": "node-a", "serviceAccountName": "web",
             "containers": [{"name": "web", "image": "nginx"}], "volumes": []},
    "status": {"phase": "Running", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}],
               "conditions": [{"type": "Ready", "status": "True"}],
               "containerStatuses": [{"name": "web", "restartCount": 0}]}})");
}

TEST(KubeResourcesTest, APodKeepsOnlyWhatTheModelReads) {
  auto kept = KeepPod(FullPod(), "node-a", /*local=*/true);
  ASSERT_TRUE(kept.has_value());
  EXPECT_FALSE((*kept)["metadata"].contains("managedFields"));
  EXPECT_FALSE((*kept)["metadata"].contains("resourceVersion"));
  EXPECT_FALSE((*kept)["metadata"].contains("annotations"));
  EXPECT_FALSE((*kept)["spec"].contains("containers"));
  EXPECT_FALSE((*kept)["status"].contains("conditions"));
  EXPECT_EQ((*kept)["metadata"]["uid"], "u-1");
  // What is kept still parses to the same pod.
  auto pod = model::ParsePod(*kept);
  ASSERT_TRUE(pod.ok()) << pod.status();
  EXPECT_EQ(pod->ip, "10.0.0.7");
  EXPECT_EQ(pod->service_account, "web");
  EXPECT_EQ(pod->WorkloadName(), "deployment/web");
  EXPECT_EQ(pod->node_name, "node-a");
  // A status-only change (a probe flipping Ready) keeps the same part.
  nlohmann::json flipped = FullPod();
  flipped["status"]["conditions"][0]["status"] = "False";
  flipped["metadata"]["resourceVersion"] = "78";
  EXPECT_EQ(KeepPod(flipped, "node-a", true), kept);
}

TEST(KubeResourcesTest, LocalAndRemoteSplitByNode) {
  EXPECT_TRUE(KeepPod(FullPod(), "node-a", true).has_value());
  EXPECT_FALSE(KeepPod(FullPod(), "node-a", false).has_value());
  EXPECT_FALSE(KeepPod(FullPod(), "node-b", true).has_value());
  EXPECT_TRUE(KeepPod(FullPod(), "node-b", false).has_value());
}

TEST(KubeResourcesTest, PodsThatAreNotEndpointsAreNotKept) {
  auto with = [](auto change) {
    nlohmann::json p = FullPod();
    change(p);
    return KeepPod(p, "node-a", true);
  };
  EXPECT_FALSE(with([](auto& p) { p["spec"].erase("nodeName"); }));         // pending
  EXPECT_FALSE(with([](auto& p) { p["status"].erase("podIP"); }));          // no IP yet
  EXPECT_FALSE(with([](auto& p) { p["status"]["phase"] = "Succeeded"; }));  // IP may be reused
  EXPECT_FALSE(with([](auto& p) { p["status"]["phase"] = "Failed"; }));
  EXPECT_FALSE(with([](auto& p) { p["spec"]["hostNetwork"] = true; }));  // the node's IP
  EXPECT_FALSE(KeepPod(nlohmann::json::array(), "node-a", true));
  // Terminating pods still run: kept until deleted.
  EXPECT_TRUE(with([](auto& p) { p["metadata"]["deletionTimestamp"] = "2026-12-05T00:00:00Z"; }));
}

TEST(KubeResourcesTest, OtherObjectsLoseServerBookkeeping) {
  auto svc = nlohmann::json::parse(R"({"kind":"Service","apiVersion":"v1",
    "metadata":{"name":"web","namespace":"shop","resourceVersion":"9","managedFields":[],
      "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}","keep":"me"}},
    "spec":{"ports":[{"port":80}]},"status":{"loadBalancer":{}}})");
  auto kept = KeepObject(svc);
  ASSERT_TRUE(kept.has_value());
  EXPECT_FALSE(kept->contains("status"));
  EXPECT_FALSE((*kept)["metadata"].contains("resourceVersion"));
  EXPECT_FALSE((*kept)["metadata"].contains("managedFields"));
  EXPECT_EQ((*kept)["metadata"]["annotations"], nlohmann::json({{"keep", "me"}}));
  EXPECT_EQ((*kept)["spec"], svc["spec"]);
}

// Of a namespace only its name and the shunt.dev annotation are kept; a pod
// keeps that annotation too, and no other.
TEST(KubeResourcesTest, NamespacesAndPodsKeepOnlyTheShortCircuitAnnotation) {
  auto ns = KeepNamespace(nlohmann::json::parse(R"({"apiVersion":"v1","kind":"Namespace",
    "metadata":{"name":"legacy","uid":"u","annotations":{"shunt.dev/short-circuit":"off",
    "other":"x"}},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}})"));
  ASSERT_TRUE(ns.has_value());
  EXPECT_EQ(
      ns->dump(),
      R"({"apiVersion":"v1","kind":"Namespace","metadata":{"annotations":{"shunt.dev/short-circuit":"off"},"name":"legacy"}})");
  auto pod = KeepPod(nlohmann::json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"a","namespace":"demo","annotations":{"shunt.dev/short-circuit":"off",
    "big":"y"}},"spec":{"nodeName":"node-a"},"status":{"podIP":"10.0.0.1"}})"),
                     "node-a", true);
  ASSERT_TRUE(pod.has_value());
  EXPECT_EQ((*pod)["metadata"]["annotations"].dump(), R"({"shunt.dev/short-circuit":"off"})");
}

TEST(KubeResourcesTest, TheMeshWatchesWhatItNeeds) {
  auto r = MeshResources("node-a");
  ASSERT_EQ(r.size(), 10u);
  EXPECT_EQ(r[0].field_selector, "spec.nodeName=node-a");
  EXPECT_EQ(r[3].kind, "Namespace");  // for the short-circuit opt-out
  EXPECT_FALSE(r[0].optional);
  size_t optional = 0;
  for (const auto& s : r) optional += s.optional;
  EXPECT_EQ(optional, 5u);               // the SMI CRDs
  EXPECT_EQ(r.back().paths.size(), 2u);  // TrafficSplit v1alpha4, then v1alpha2
}

}  // namespace
}  // namespace shunt::source::kube
