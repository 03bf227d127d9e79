// The kube source (agent/source/kube) against the fake API server over
// HTTPS: what reaches the object store after lists, watch events and every
// fault the protocol has. No root needed: no kernel state is touched.
#include "agent/source/kube/kube_source.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "agent/lib/clock.h"
#include "agent/source/kube/resources.h"
#include "test/e2e/harness/eventually.h"
#include "test/kubeapi/driver/fake_apiserver.h"

namespace shunt::source::kube {
namespace {

using e2e::Eventually;
using kubeapi::FakeApiServer;
using kubeapi::PodObject;

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status _s = (expr);              \
    ASSERT_TRUE(_s.ok()) << #expr << ": " << _s; \
  } while (0)

nlohmann::json TrafficTarget(const std::string& name, const std::string& source_sa) {
  return nlohmann::json::parse(absl::StrCat(R"({"apiVersion":"access.smi-spec.io/v1alpha3",
    "kind":"TrafficTarget","metadata":{"name":")",
                                            name, R"(","namespace":"shop"},
    "spec":{"destination":{"kind":"ServiceAccount","name":"web","namespace":"shop"},
      "sources":[{"kind":"ServiceAccount","name":")",
                                            source_sa, R"(","namespace":"shop"}],
      "rules":[{"kind":"TCPRoute","name":"web-port"}]}})"));
}

class KubeSourceTest : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& flags = {}) {
    auto s = FakeApiServer::Start(flags);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
  }
  void StartSource(ReflectorOptions options = {}) {
    auto config = LoadKubeconfig(kubeconfig_.empty() ? server_->kubeconfig() : kubeconfig_);
    ASSERT_TRUE(config.ok()) << config.status();
    options.backoff_initial_ms = 50;
    options.backoff_max_ms = 400;
    options.absent_poll_ms = 200;
    auto s = KubeSource::Create(*config, MeshResources("node-a"), options, lib::RealClock::Get());
    ASSERT_TRUE(s.ok()) << s.status();
    source_ = *std::move(s);
  }
  // Feeds the source into the store as the agent's loop does, until `pred`
  // holds for the published snapshot.
  absl::Status Until(const std::string& what,
                     const std::function<bool(const model::Snapshot&)>& pred,
                     int timeout_ms = 10000) {
    return Eventually(
        what,
        [&]() -> absl::Status {
          pollfd p{source_->fd(), POLLIN, 0};
          poll(&p, 1, 20);
          source_->Drain();
          if (absl::Status s = source_->Sync(store_); !s.ok()) return s;
          snapshot_ = store_.Publish();
          if (source_->synced() && pred(*snapshot_)) return absl::OkStatus();
          return absl::UnavailableError(source_->StatusJson().dump());
        },
        timeout_ms);
  }
  std::set<std::string> Pods() const {
    std::set<std::string> out;
    for (const auto& p : snapshot_->pods) out.insert(absl::StrCat(p.Key(), "@", p.node_name));
    return out;
  }
  bool HasPods(const std::set<std::string>& want) const { return Pods() == want; }
  int Requests(const std::function<bool(const nlohmann::json&)>& match) {
    auto r = server_->Requests();
    EXPECT_TRUE(r.ok()) << r.status();
    int n = 0;
    if (r.ok())
      for (const auto& q : *r) n += match(q);
    return n;
  }
  static std::string Query(const nlohmann::json& request, const char* key) {
    return request["query"].value(key, "");
  }

  std::unique_ptr<FakeApiServer> server_;
  std::string kubeconfig_;
  std::unique_ptr<KubeSource> source_;
  model::ObjectStore store_;
  std::shared_ptr<const model::Snapshot> snapshot_;
};

TEST_F(KubeSourceTest, ListsThenFollowsEveryChange) {
  StartServer();
  ASSERT_TRUE(server_->Apply(PodObject("shop", "web-1", "node-a", "10.1.0.2", "web", "u-1")).ok());
  ASSERT_TRUE(server_->Apply(PodObject("shop", "db-1", "node-b", "10.2.0.2", "db")).ok());
  ASSERT_TRUE(server_->Apply(TrafficTarget("web-from-db", "db")).ok());
  StartSource();
  ASSERT_OK(Until("first sync", [&](const model::Snapshot& s) {
    return HasPods({"shop/web-1@node-a", "shop/db-1@node-b"}) && s.traffic_targets.size() == 1;
  }));
  EXPECT_EQ(snapshot_->pods[0].uid.empty() && snapshot_->pods[1].uid.empty(), false);

  // Created, changed, moved between nodes, deleted.
  ASSERT_TRUE(server_->Apply(PodObject("shop", "web-2", "node-a", "10.1.0.3", "web")).ok());
  ASSERT_OK(Until("a new pod", [&](const model::Snapshot&) {
    return HasPods({"shop/web-1@node-a", "shop/web-2@node-a", "shop/db-1@node-b"});
  }));
  ASSERT_TRUE(server_->Apply(PodObject("shop", "db-1", "node-a", "10.1.0.9", "db")).ok());
  ASSERT_OK(Until("a pod moved onto this node", [&](const model::Snapshot& s) {
    for (const auto& p : s.pods)
      if (p.name == "db-1" && p.ip != "10.1.0.9") return false;
    return HasPods({"shop/web-1@node-a", "shop/web-2@node-a", "shop/db-1@node-a"});
  }));
  ASSERT_OK(server_->Delete("v1", "Pod", "shop", "web-2"));
  ASSERT_OK(server_->Delete("access.smi-spec.io/v1alpha3", "TrafficTarget", "shop", "web-from-db"));
  ASSERT_OK(Until("deletions", [&](const model::Snapshot& s) {
    return HasPods({"shop/web-1@node-a", "shop/db-1@node-a"}) && s.traffic_targets.empty();
  }));
  EXPECT_TRUE(snapshot_->problems.empty()) << snapshot_->problems[0].ToString();

  // A pod that ends (Succeeded) leaves: its IP may be given to another.
  auto done = PodObject("shop", "web-1", "node-a", "10.1.0.2", "web", "u-1");
  done["status"]["phase"] = "Succeeded";
  ASSERT_TRUE(server_->Apply(done).ok());
  ASSERT_OK(
      Until("an ended pod", [&](const model::Snapshot&) { return HasPods({"shop/db-1@node-a"}); }));
  const nlohmann::json st = source_->StatusJson();
  EXPECT_EQ(st["synced"], true) << st.dump();
  EXPECT_EQ(st["server"], server_->url());
}

TEST_F(KubeSourceTest, StatusOnlyChangesReachNothing) {
  StartServer();
  auto pod = PodObject("shop", "web-1", "node-a", "10.1.0.2", "web", "u-1");
  ASSERT_TRUE(server_->Apply(pod).ok());
  StartSource();
  ASSERT_OK(
      Until("first sync", [&](const model::Snapshot&) { return HasPods({"shop/web-1@node-a"}); }));
  const uint64_t generation = snapshot_->generation;
  // Readiness flapping: the kubelet rewrites status.conditions often.
  for (int i = 0; i < 5; ++i) {
    pod["status"]["conditions"] = {{{"type", "Ready"}, {"status", i % 2 ? "True" : "False"}}};
    ASSERT_TRUE(server_->Apply(pod).ok());
  }
  // A change that matters, after them, to know they have all been read.
  ASSERT_TRUE(server_->Apply(PodObject("shop", "web-2", "node-a", "10.1.0.3", "web")).ok());
  ASSERT_OK(Until("the marker pod", [&](const model::Snapshot&) {
    return HasPods({"shop/web-1@node-a", "shop/web-2@node-a"});
  }));
  EXPECT_EQ(snapshot_->generation, generation + 1) << "status-only changes published snapshots";
}

TEST_F(KubeSourceTest, ListsInPagesWhenWatchListIsRefused) {
  StartServer({"--no-watchlist"});
  nlohmann::json pods = nlohmann::json::array();
  for (int i = 0; i < 7; ++i)
    pods.push_back(
        PodObject("shop", absl::StrCat("p", i), "node-b", absl::StrCat("10.2.0.", i + 2)));
  ASSERT_TRUE(server_->Bulk(pods).ok());
  StartSource({.page_size = 3});
  ASSERT_OK(
      Until("seven remote pods", [&](const model::Snapshot& s) { return s.pods.size() == 7; }));
  // WatchList asked for and refused, then pages with continue tokens.
  EXPECT_GE(Requests([](const nlohmann::json& q) {
              return q["path"] == "/api/v1/pods" && Query(q, "sendInitialEvents") == "true" &&
                     q["status"] == 422;
            }),
            1);
  EXPECT_EQ(Requests([](const nlohmann::json& q) {
              return q["path"] == "/api/v1/pods" && !q["watch"].get<bool>() &&
                     Query(q, "fieldSelector").empty() && !Query(q, "continue").empty();
            }),
            2);  // pages 2 and 3 of 3
  EXPECT_GE(Requests([](const nlohmann::json& q) {
              return q["watch"].get<bool>() && Query(q, "allowWatchBookmarks") == "true" &&
                     !Query(q, "resourceVersion").empty() && !Query(q, "timeoutSeconds").empty();
            }),
            9);  // every resource watches from its list's resourceVersion
}

TEST_F(KubeSourceTest, UsesWatchListWhereTheServerHasIt) {
  StartServer();
  ASSERT_TRUE(server_->Apply(PodObject("shop", "web-1", "node-a", "10.1.0.2", "web", "u-1")).ok());
  StartSource();
  ASSERT_OK(
      Until("first sync", [&](const model::Snapshot&) { return HasPods({"shop/web-1@node-a"}); }));
  EXPECT_EQ(Requests([](const nlohmann::json& q) { return !q["watch"].get<bool>(); }), 0)
      << "no plain list was needed";
  EXPECT_GE(Requests([](const nlohmann::json& q) {
              return Query(q, "sendInitialEvents") == "true" &&
                     Query(q, "resourceVersionMatch") == "NotOlderThan";
            }),
            9);
}

TEST_F(KubeSourceTest, A410InTheMiddleOfAChangeRelistsWithoutLosingAnything) {
  StartServer();
  ASSERT_TRUE(server_->Apply(PodObject("shop", "stays", "node-a", "10.1.0.2", "web", "u-1")).ok());
  ASSERT_TRUE(server_->Apply(PodObject("shop", "goes", "node-a", "10.1.0.3", "web", "u-2")).ok());
  StartSource();
  ASSERT_OK(Until("first sync", [&](const model::Snapshot&) {
    return HasPods({"shop/stays@node-a", "shop/goes@node-a"});
  }));
  ASSERT_OK(server_->ClearRequests());
  // Every watch expires, and while the agent relists the cluster changes.
  ASSERT_TRUE(server_->Fault({{"expire_watches", true}}).ok());
  ASSERT_OK(server_->Delete("v1", "Pod", "shop", "goes"));
  ASSERT_TRUE(server_->Apply(PodObject("shop", "new", "node-a", "10.1.0.4", "web", "u-3")).ok());
  ASSERT_OK(Until("the state after the 410", [&](const model::Snapshot&) {
    return HasPods({"shop/stays@node-a", "shop/new@node-a"});
  }));
  // The relist first asked from the last resourceVersion it had.
  EXPECT_GE(Requests([](const nlohmann::json& q) {
              return Query(q, "resourceVersionMatch") == "NotOlderThan" &&
                     !Query(q, "resourceVersion").empty();
            }),
            1)
      << server_->Requests()->dump(1);
  // And the relist changed no object that stayed the same: a pod that was
  // in force throughout kept its place (the writers diff by value).
  ASSERT_OK(Until("watching again", [&](const model::Snapshot&) {
    const nlohmann::json st = source_->StatusJson();
    for (const auto& r : st["resources"])
      if (r["state"] != "watching" && r["state"] !=
                                          "not installed (the API server has no such "
                                          "resource; install its CRD)")
        return false;
    return true;
  }));
}

TEST_F(KubeSourceTest, ThrottlingIsHonoured) {
  StartServer();
  ASSERT_TRUE(server_->Fault({{"throttle", 9}, {"retry_after", 1}}).ok());
  const auto started = std::chrono::steady_clock::now();
  StartSource();
  ASSERT_OK(Until("synced after 429s", [&](const model::Snapshot&) { return true; }));
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(900))
      << "Retry-After: 1 was not waited for";
  EXPECT_EQ(Requests([](const nlohmann::json& q) { return q["status"] == 429; }), 9);
}

TEST_F(KubeSourceTest, BrokenStreamsResumeWithoutLosingEvents) {
  StartServer();
  StartSource();
  ASSERT_OK(Until("first sync", [&](const model::Snapshot&) { return true; }));
  // A connection cut inside an event, then a malformed event: the watch
  // resumes from the last complete event and nothing is missed.
  ASSERT_TRUE(server_->Fault({{"drop_mid_event", 1}}).ok());
  ASSERT_TRUE(server_->Apply(PodObject("shop", "a", "node-b", "10.2.0.2")).ok());
  ASSERT_TRUE(server_->Fault({{"malformed", 1}}).ok());
  ASSERT_TRUE(server_->Apply(PodObject("shop", "b", "node-b", "10.2.0.3")).ok());
  ASSERT_TRUE(server_->Apply(PodObject("shop", "c", "node-b", "10.2.0.4")).ok());
  ASSERT_OK(Until("all three pods", [&](const model::Snapshot&) {
    return HasPods({"shop/a@node-b", "shop/b@node-b", "shop/c@node-b"});
  }));
}

TEST_F(KubeSourceTest, AMissingCrdIsAStatusLineAndIsPickedUpWhenInstalled) {
  StartServer({"--missing", "trafficsplits.split.smi-spec.io"});
  StartSource();
  ASSERT_OK(Until("synced without TrafficSplits", [&](const model::Snapshot&) { return true; }));
  bool said = false;
  const nlohmann::json status = source_->StatusJson();
  for (const auto& r : status["resources"])
    if (r["resource"] == "trafficsplits")
      said = r["state"].get<std::string>().find("not installed") != std::string::npos;
  EXPECT_TRUE(said) << status.dump(1);
  ASSERT_TRUE(
      server_->Fault({{"install", nlohmann::json::array({"trafficsplits.split.smi-spec.io"})}})
          .ok());
  ASSERT_TRUE(server_
                  ->Apply(nlohmann::json::parse(R"({"apiVersion":"split.smi-spec.io/v1alpha4",
      "kind":"TrafficSplit","metadata":{"name":"web","namespace":"shop"},
      "spec":{"service":"web","backends":[{"service":"web-v1","weight":90},
                                          {"service":"web-v2","weight":10}]}})"))
                  .ok());
  ASSERT_OK(
      Until("the split", [&](const model::Snapshot& s) { return s.traffic_splits.size() == 1; }));
}

TEST_F(KubeSourceTest, ARotatedTokenIsReadAgainAfterA401) {
  StartServer();
  // A kubeconfig whose user reads the token from a file, as a projected
  // service account token is read.
  kubeconfig_ = server_->WriteKubeconfig("kubeconfig-tokenfile");
  StartSource();
  ASSERT_OK(Until("first sync", [&](const model::Snapshot&) { return true; }));
  ASSERT_TRUE(server_->Fault({{"token", "rotated-token"}}).ok());  // rewrites DIR/token
  ASSERT_TRUE(server_->Fault({{"expire_watches", true}}).ok());    // every watch reconnects
  ASSERT_TRUE(server_->Apply(PodObject("shop", "after", "node-b", "10.2.0.2")).ok());
  ASSERT_OK(Until("a pod seen with the new token",
                  [&](const model::Snapshot&) { return HasPods({"shop/after@node-b"}); }));
}

TEST_F(KubeSourceTest, AWrongCaIsAnErrorNamingTheServer) {
  StartServer();
  kubeconfig_ = server_->WriteKubeconfig("kubeconfig-wrong-ca", "wrong-ca.crt");
  StartSource();
  absl::Status never = Until(
      "never synced", [&](const model::Snapshot&) { return true; }, 1500);
  EXPECT_FALSE(never.ok());
  const std::string status = source_->StatusJson().dump();
  EXPECT_NE(
      status.find(absl::StrCat("the API server ", server_->url(), " presented a certificate")),
      std::string::npos)
      << status;
  EXPECT_NE(status.find("wrong-ca.crt"), std::string::npos) << status;
}

}  // namespace
}  // namespace shunt::source::kube
