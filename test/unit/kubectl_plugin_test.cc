// `kubectl shunt`: which arguments are the plugin's, which agent pod it
// picks from `kubectl get pods -o json`, the kubectl command lines it runs,
// and which kubectl. The run against real kubectl and the fake API server is
// test/kubeapi/test_kubectl_plugin.py.
#include "tools/shuntctl/kubectl_plugin.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace shunt::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

PluginArgs Ok(const std::vector<std::string>& args) {
  auto p = ParsePluginArgs(args);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : PluginArgs{};
}

std::string Error(const std::vector<std::string>& args) {
  auto p = ParsePluginArgs(args);
  if (p.ok()) return "parsed";
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << p.status();
  return std::string(p.status().message());
}

TEST(KubectlPluginArgsTest, PluginModeIsTheNameKubectlRunsItBy) {
  EXPECT_TRUE(IsPluginInvocation("kubectl-shunt"));
  EXPECT_TRUE(IsPluginInvocation("/usr/local/bin/kubectl-shunt"));
  EXPECT_FALSE(IsPluginInvocation("shuntctl"));
  EXPECT_FALSE(IsPluginInvocation("/opt/kubectl-shunt/shuntctl"));
  EXPECT_FALSE(IsPluginInvocation("kubectl-shunt-dev"));
}

TEST(KubectlPluginArgsTest, PluginFlagsAreTakenAnywhereInBothSpellings) {
  PluginArgs p = Ok({"--node", "n1", "status"});
  EXPECT_EQ(p.node, "n1");
  EXPECT_THAT(p.shuntctl_args, ElementsAre("status"));
  EXPECT_EQ(p.namespace_, "shunt-system");

  p = Ok({"flows", "--to", "shop/web", "--node=n2", "-o", "json", "--kubeconfig", "/k",
          "--context=prod", "-n", "mesh"});
  EXPECT_EQ(p.node, "n2");
  EXPECT_EQ(p.kubeconfig, "/k");
  EXPECT_EQ(p.context, "prod");
  EXPECT_EQ(p.namespace_, "mesh");
  EXPECT_THAT(p.shuntctl_args, ElementsAre("flows", "--to", "shop/web", "-o", "json"));

  EXPECT_EQ(Ok({"status", "--namespace=mesh"}).namespace_, "mesh");
  EXPECT_EQ(Ok({"status", "-n=mesh"}).namespace_, "mesh");
  EXPECT_EQ(Ok({"status", "--namespace", "mesh"}).namespace_, "mesh");
}

TEST(KubectlPluginArgsTest, ShuntctlArgumentsPassInOrder) {
  PluginArgs p = Ok({"policy", "check", "--node", "n1", "--from", "shop/client", "--to", "shop/web",
                     "--port", "80", "--proto", "tcp"});
  EXPECT_THAT(p.shuntctl_args, ElementsAre("policy", "check", "--from", "shop/client", "--to",
                                           "shop/web", "--port", "80", "--proto", "tcp"));
  EXPECT_THAT(Ok({"lb", "explain", "shop/web"}).shuntctl_args,
              ElementsAre("lb", "explain", "shop/web"));
  EXPECT_THAT(Ok({"--bpffs", "/sys/fs/bpf/x", "maps", "dump", "policy"}).shuntctl_args,
              ElementsAre("--bpffs", "/sys/fs/bpf/x", "maps", "dump", "policy"));
  EXPECT_EQ(Ok({"status"}).node, "");
}

TEST(KubectlPluginArgsTest, AfterDoubleDashNothingIsThePlugins) {
  PluginArgs p = Ok({"--node", "n1", "status", "--", "--node", "x"});
  EXPECT_EQ(p.node, "n1");
  EXPECT_THAT(p.shuntctl_args, ElementsAre("status", "--", "--node", "x"));
}

TEST(KubectlPluginArgsTest, PluginFlagMistakesNameTheFlag) {
  EXPECT_EQ(Error({"status", "--node"}), "--node needs a value");
  EXPECT_EQ(Error({"status", "--node="}), "--node needs a value");
  EXPECT_EQ(Error({"--node", "-o", "json", "status"}), "--node needs a value");
  EXPECT_EQ(Error({"status", "-n"}), "-n needs a value");
  EXPECT_EQ(Error({"status", "--kubeconfig"}), "--kubeconfig needs a value");
  EXPECT_EQ(Error({"--node", "a", "status", "--node=b"}), "--node given twice");
  EXPECT_EQ(Error({"-n", "a", "status", "--namespace", "b"}), "--namespace given twice");
}

TEST(KubectlPluginArgsTest, ShuntctlMistakesAreCaughtBeforeTheCluster) {
  EXPECT_THAT(Error({"flows", "--portX", "80", "--node", "n1"}), HasSubstr("unknown flag --portX"));
  EXPECT_THAT(Error({"status", "--from", "a/b"}), HasSubstr("--from does not apply to 'status'"));
  EXPECT_EQ(Error({"--node", "n1"}), "no command given");
  EXPECT_EQ(Error({"frobnicate", "--node", "n1"}), "unknown command 'frobnicate'");
}

TEST(KubectlPluginArgsTest, UninstallDoesNotRunThroughThePlugin) {
  EXPECT_THAT(Error({"uninstall", "--node", "n1"}),
              HasSubstr("uninstall does not run through kubectl shunt"));
}

TEST(KubectlPluginArgsTest, Help) {
  EXPECT_TRUE(Ok({"--help"}).help);
  EXPECT_TRUE(Ok({"-h"}).help);
  EXPECT_TRUE(Ok({"help"}).help);
  EXPECT_TRUE(Ok({"status", "--node", "n1", "--help"}).help);
  for (const char* command : {"status", "flows", "policy check", "services", "lb explain", "drops",
                              "stat", "top", "endpoints", "identities", "maps"})
    EXPECT_THAT(kPluginUsage, HasSubstr(std::string("\n  ") + command)) << command;
}

// --- the pod ---------------------------------------------------------------

nlohmann::json Pod(const std::string& name, const std::string& node,
                   const std::string& phase = "Running",
                   const std::string& created = "2026-12-01T10:00:00Z") {
  nlohmann::json p = {
      {"metadata", {{"name", name}, {"namespace", "shunt-system"}, {"creationTimestamp", created}}},
      {"spec", {{"containers", {{{"name", "agent"}}}}}},
      {"status", {{"phase", phase}}}};
  if (!node.empty()) p["spec"]["nodeName"] = node;
  return p;
}

std::string List(const std::vector<nlohmann::json>& pods) {
  return nlohmann::json{{"apiVersion", "v1"}, {"kind", "List"}, {"items", pods}}.dump();
}

TEST(KubectlPluginPodTest, TheRunningPodOnTheNode) {
  auto c = ChooseAgentPod(List({Pod("agent-a", "n1"), Pod("agent-b", "n2")}), "n2", "shunt-system");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pod, "agent-b");
  EXPECT_EQ(c->node, "n2");
  EXPECT_THAT(c->note, IsEmpty());
}

TEST(KubectlPluginPodTest, SeveralRunningOnTheNodeTheNewestAndSaysSo) {
  auto c = ChooseAgentPod(List({Pod("agent-old", "n1", "Running", "2026-12-01T10:00:00Z"),
                                Pod("agent-new", "n1", "Running", "2026-12-05T09:00:00Z"),
                                Pod("agent-pending", "n1", "Pending", "2026-12-05T10:00:00Z")}),
                          "n1", "shunt-system");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pod, "agent-new");
  EXPECT_EQ(c->note,
            "2 Shunt agent pods are Running on node n1 (agent-new, agent-old), as during a "
            "rollout; using the newest, agent-new");
}

TEST(KubectlPluginPodTest, NoneRunningNamesThePhases) {
  auto c = ChooseAgentPod(List({Pod("agent-a", "n1", "Pending"), Pod("agent-b", "n1", "Failed")}),
                          "n1", "mesh");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_EQ(c.status().message(),
            "no Shunt agent pod on node n1 is Running: agent-a (Pending), agent-b (Failed); "
            "kubectl describe pod -n mesh agent-a says why");
}

TEST(KubectlPluginPodTest, NoAgentOnTheNodeNamesTheNodeAndTheSearch) {
  auto c = ChooseAgentPod(List({}), "n9", "shunt-system");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
  EXPECT_EQ(c.status().message(),
            "no Shunt agent pod on node n9: found no pods labelled "
            "app.kubernetes.io/name=shunt-agent in namespace shunt-system there; is the node "
            "name right (kubectl get nodes)?");
  // Whatever the server does with the field selector, a pod elsewhere is not it.
  c = ChooseAgentPod(List({Pod("agent-a", "n1")}), "n9", "shunt-system");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
}

TEST(KubectlPluginPodTest, WithoutANodeTheOnlyNode) {
  auto c = ChooseAgentPod(List({Pod("agent-a", "n1")}), "", "shunt-system");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pod, "agent-a");
  EXPECT_EQ(c->node, "n1");
  // A rollout on a one-node cluster: still one node, the newest Running pod.
  c = ChooseAgentPod(List({Pod("agent-a", "n1", "Running", "2026-12-01T10:00:00Z"),
                           Pod("agent-b", "n1", "Running", "2026-12-02T10:00:00Z")}),
                     "", "shunt-system");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pod, "agent-b");
  EXPECT_THAT(c->note, HasSubstr("using the newest, agent-b"));
}

TEST(KubectlPluginPodTest, WithoutANodeSeveralNodesIsAnErrorListingThem) {
  auto c = ChooseAgentPod(
      List({Pod("agent-c", "n3"), Pod("agent-a", "n1"), Pod("agent-b", "n2", "Pending")}), "",
      "shunt-system");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << c.status();
  EXPECT_EQ(c.status().message(),
            "Shunt agents run on 3 nodes (n1, n2, n3): pass --node NODE to say which one to ask");
}

TEST(KubectlPluginPodTest, WithoutANodeManyNodesAreCut) {
  std::vector<nlohmann::json> pods;
  for (int i = 10; i < 35; ++i)
    pods.push_back(Pod("agent-" + std::to_string(i), "n" + std::to_string(i)));
  auto c = ChooseAgentPod(List(pods), "", "shunt-system");
  EXPECT_THAT(c.status().message(), HasSubstr("25 nodes (n10, n11, "));
  EXPECT_THAT(c.status().message(), HasSubstr(", n29 and 5 more): pass --node NODE"));
}

TEST(KubectlPluginPodTest, WithoutANodeNoneAnywhere) {
  auto c = ChooseAgentPod(List({}), "", "shunt-system");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kNotFound) << c.status();
  EXPECT_THAT(c.status().message(),
              HasSubstr("no Shunt agent pods: found no pods labelled "
                        "app.kubernetes.io/name=shunt-agent in namespace shunt-system"));
  c = ChooseAgentPod(List({Pod("agent-a", "", "Pending")}), "", "shunt-system");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << c.status();
  EXPECT_THAT(c.status().message(), HasSubstr("no Shunt agent pod is on a node yet"));
}

TEST(KubectlPluginPodTest, OutputThatIsNotAListIsAnError) {
  for (const char* out : {"", "not json", "[]", R"({"items": 3})", R"({"kind":"Status"})"}) {
    auto c = ChooseAgentPod(out, "n1", "shunt-system");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << out;
    EXPECT_THAT(c.status().message(), HasSubstr("not a JSON list of pods")) << out;
  }
  // Fields of the wrong type are absent, not a crash.
  auto c = ChooseAgentPod(
      R"({"items":[{"metadata":{"name":7},"spec":[],"status":{"phase":1}},
                   {"metadata":{"name":"a"},"spec":{"nodeName":"n1"},"status":{"phase":"Running"}}]})",
      "n1", "shunt-system");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->pod, "a");
}

// --- the kubectl command lines ------------------------------------------------

TEST(KubectlPluginArgvTest, GetPods) {
  EXPECT_THAT(
      GetPodsArgv(Ok({"status", "--node", "n2"})),
      ElementsAre("get", "pods", "-n", "shunt-system", "-l", "app.kubernetes.io/name=shunt-agent",
                  "--field-selector", "spec.nodeName=n2", "-o", "json"));
  EXPECT_THAT(GetPodsArgv(Ok({"status", "--kubeconfig", "/k", "--context", "c", "-n", "m"})),
              ElementsAre("--kubeconfig", "/k", "--context", "c", "get", "pods", "-n", "m", "-l",
                          "app.kubernetes.io/name=shunt-agent", "-o", "json"));
}

TEST(KubectlPluginArgvTest, Exec) {
  PluginArgs p = Ok({"flows", "--node", "n2", "--to", "shop/web", "-o", "json"});
  EXPECT_THAT(ExecArgv(p, "agent-b", false),
              ElementsAre("exec", "-n", "shunt-system", "agent-b", "-c", "agent", "--", "shuntctl",
                          "flows", "--to", "shop/web", "-o", "json"));
  EXPECT_THAT(ExecArgv(p, "agent-b", true),
              ElementsAre("exec", "-i", "-t", "-n", "shunt-system", "agent-b", "-c", "agent", "--",
                          "shuntctl", "flows", "--to", "shop/web", "-o", "json"));
  p = Ok({"status", "--kubeconfig=/k", "--context=c"});
  EXPECT_THAT(ExecArgv(p, "agent-a", false),
              ElementsAre("--kubeconfig", "/k", "--context", "c", "exec", "-n", "shunt-system",
                          "agent-a", "-c", "agent", "--", "shuntctl", "status"));
}

// --- which kubectl -------------------------------------------------------------

class FindKubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt-kubectl-plugin-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::filesystem::create_directory(dir_ + "/a");
    std::filesystem::create_directory(dir_ + "/b");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Make(const std::string& rel, mode_t mode = 0755) {
    const std::string path = dir_ + "/" + rel;
    std::ofstream(path) << "#!/bin/sh\n";
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(FindKubectlTest, KubectlOnPath) {
  Make("a/kubectl", 0644);  // not executable: passed over
  const std::string b = Make("b/kubectl");
  const std::string path = dir_ + "/a:" + dir_ + "/b";
  EXPECT_EQ(FindKubectl(nullptr, nullptr, path.c_str()).value_or(""), b);
  EXPECT_EQ(FindKubectl("", "", path.c_str()).value_or(""), b);
}

TEST_F(FindKubectlTest, KubectlEnvComesFirst) {
  Make("b/kubectl");
  const std::string mine = Make("a/my-kubectl");
  const std::string path = dir_ + "/b";
  EXPECT_EQ(FindKubectl(mine.c_str(), nullptr, path.c_str()).value_or(""), mine);
  const std::string path_ab = dir_ + "/a:" + dir_ + "/b";
  EXPECT_EQ(FindKubectl("my-kubectl", nullptr, path_ab.c_str()).value_or(""), mine);
  auto bad = FindKubectl((dir_ + "/nope").c_str(), nullptr, path.c_str());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bad.status().message(), "KUBECTL=" + dir_ + "/nope is not an executable file");
  bad = FindKubectl("nope", nullptr, path.c_str());
  EXPECT_EQ(bad.status().message(), "KUBECTL=nope is not an executable file on PATH");
}

TEST_F(FindKubectlTest, KubectlPathFromKubectlBeforePath) {
  const std::string b = Make("b/kubectl");
  const std::string caller = Make("a/kubectl-1.37");
  const std::string path = dir_ + "/b";
  EXPECT_EQ(FindKubectl(nullptr, caller.c_str(), path.c_str()).value_or(""), caller);
  // Stale (the file is gone): PATH's.
  EXPECT_EQ(FindKubectl(nullptr, (dir_ + "/gone").c_str(), path.c_str()).value_or(""), b);
}

TEST_F(FindKubectlTest, NoKubectlSaysItIsAPluginThatNeedsOne) {
  const std::string path = dir_ + "/a";
  auto k = FindKubectl(nullptr, nullptr, path.c_str());
  EXPECT_EQ(k.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(k.status().message(), HasSubstr("kubectl-shunt is a kubectl plugin"));
  EXPECT_THAT(k.status().message(), HasSubstr("no kubectl on PATH"));
  EXPECT_EQ(FindKubectl(nullptr, nullptr, nullptr).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace shunt::ctl
