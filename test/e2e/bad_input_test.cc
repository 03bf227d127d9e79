// Bad input gets a clear error naming what is wrong and where; nothing that
// was good stops working because of it.
#include <sys/socket.h>
#include <sys/wait.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "agent/http/client.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

struct AgentRun {
  int exit_code;
  std::string output;
};

// Runs the agent with `flags` and returns its exit code and output.
AgentRun RunAgent(const std::string& flags) {
  std::string cmd = absl::StrCat(SHUNT_AGENT_BIN, " ", flags, " 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

class AgentFlagsTest : public MeshTest {};

TEST_F(AgentFlagsTest, EachBadEnvironmentIsNamedAndFails) {
  const std::string base = absl::StrCat("--node=n1 --config-dir=", node_->config_dir(),
                                        " --api-socket=", node_->work_dir(), "/x.sock");
  const std::string cg = " --cgroup-root=" + node_->cgroup_root();
  const std::string bpffs = " --bpffs=" + node_->bpffs();
  const std::string ca = node_->work_dir() + "/ca";
  ASSERT_OK(Sh(absl::StrCat(SHUNTCTL_BIN, " ca init --dir ", ca)).status());
  const std::string mtls = " --mtls=strict --ca-dir=" + ca;
  struct Case {
    std::string flags, must_say;
    int code;
  } cases[] = {
      {base + cg + " --bpffs=/nonexistent-shunt/dir", "bpffs: /nonexistent-shunt/dir", 1},
      {base + cg + " --bpffs=" + node_->work_dir() + "/pins", "is not on a BPF filesystem", 1},
      {base + bpffs + " --cgroup-root=/sys/fs/cgroup/nonexistent-shunt",
       "cgroup root: /sys/fs/cgroup/nonexistent-shunt does not exist", 1},
      {base + bpffs + " --cgroup-root=" + node_->work_dir(), "is not in a cgroup v2 hierarchy", 1},
      {absl::StrCat("--config-dir=", node_->config_dir()) + cg + bpffs, "--node is required", 2},
      {"--node=n1 --config-dir=/nonexistent-shunt-config" + cg + bpffs,
       "--config-dir /nonexistent-shunt-config", 1},
      {base + cg + bpffs + " --source=kube", "--config-dir is for --source=file", 2},
      {base + cg + bpffs + " --source=etcd", "--source=etcd: expected file or kube", 2},
      {"--node=n1 --source=kube --kubeconfig=/nonexistent-shunt/kubeconfig --api-socket=" +
           node_->work_dir() + "/x.sock" + cg + bpffs,
       "kubeconfig: cannot read /nonexistent-shunt/kubeconfig", 1},
      {base + cg + bpffs + " --health-addr=localhost:9466",
       "--health-addr 'localhost:9466': 'localhost' is not an IP address", 2},
      {base + cg + bpffs + " --metrics-addr=9464", "--metrics-addr '9464': expected HOST:PORT", 2},
      {base + cg + bpffs + " --metrics-addr=localhost:9464", "'localhost' is not an IP address", 2},
      {base + cg + bpffs + " --metrics-addr=127.0.0.1:70000", "expected HOST:PORT", 2},
      {base + cg + bpffs + " --mtls=strict", "--mtls=strict needs --ca-dir", 2},
      {base + cg + bpffs + " --mtls=on", "--mtls=on: expected off, permissive or strict", 2},
      {base + cg + bpffs + " --mtls=strict --ca-dir=/nonexistent-shunt/ca",
       "create a CA with `shuntctl ca init --dir /nonexistent-shunt/ca`", 1},
      {base + cg + bpffs + " --trust-domain=Cluster.Local", "--trust-domain: spiffe id", 2},
      {base + cg + bpffs + " --cert-ttl=1m", "--cert-ttl must be within 10m..366d", 2},
      {base + cg + bpffs + mtls + " --node-ip=10.0.0.300",
       "--node-ip: '10.0.0.300' is not an IP address", 2},
      {base + cg + bpffs + mtls + " --node-ip=10.0.0.1,10.0.0.2",
       "--node-ip: at most one IPv4 and one IPv6 address", 2},
      {base + cg + bpffs + mtls + " --proxy-inbound-port=15001",
       "--proxy-inbound-port=15001 is the proxy's outbound port", 2},
      {base + cg + bpffs + mtls + " --proxy-inbound-port=0",
       "--proxy-inbound-port must be within 1..65535", 2},
      {base + cg + bpffs + mtls + " --node-ip=127.0.0.1 --proxy-bin=/nonexistent-shunt/proxy",
       "--proxy-bin /nonexistent-shunt/proxy", 1},
      {base + cg + bpffs + mtls + " --trace-otlp-endpoint=otel:4318",
       "--trace-otlp-endpoint: 'otel:4318' is not an http:// or https:// URL", 2},
      {base + cg + bpffs + " --proxy-l7-port=0 --trace-otlp-endpoint=http://otel:4318",
       "--trace-otlp-endpoint needs the proxy's L7 layer, which --mtls=off with "
       "--proxy-l7-port=0 turns off",
       2},
      {base + cg + bpffs + mtls + " --l7-max-header-bytes=10",
       "--l7-max-header-bytes must be within 1024..1048576, got 10", 2},
      {base + cg + bpffs + mtls + " --l7-idle-timeout=10ms",
       "--l7-idle-timeout must be within 1s..1h, got 10 ms", 2},
      {base + cg + bpffs + mtls + " --l7-connect-timeout=10m",
       "--l7-connect-timeout must be within 100ms..5m, got 600000 ms", 2},
  };
  for (const Case& c : cases) {
    AgentRun r = RunAgent(c.flags);
    EXPECT_EQ(r.exit_code, c.code) << c.flags << "\n" << r.output;
    EXPECT_NE(r.output.find(c.must_say), std::string::npos) << c.flags << "\n" << r.output;
  }
  // None of the failed starts left pins behind.
  EXPECT_FALSE(std::filesystem::exists(node_->bpffs())) << "a failed start installed pins";
}

class BadManifestTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(node_->WriteConfigFile("bad.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: no-ip, namespace: demo}
spec: {nodeName: n1}
---
apiVersion: v1
kind: Pod
metadata: {name: bad-ip, namespace: demo}
spec: {nodeName: n1}
status: {podIP: 10.1.2.300}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web, namespace: demo}
data: {port: "80"}
)"));
    ASSERT_OK(
        node_->WriteConfigFile("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [unclosed\n"));
    StartMesh();  // the good pods in pods.yaml are meshed regardless
  }

  absl::StatusOr<nlohmann::json> CtlStatus() {
    auto out = Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                               node_->api_socket(), " status -o json"));
    if (!out.ok()) return out.status();
    return nlohmann::json::parse(*out);
  }
};

TEST_F(BadManifestTest, RejectedObjectsAreReportedWithFileAndReasonAndTheRestApplies) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, CtlStatus());
  const auto& problems = st["agent"]["config"]["problems"];
  std::vector<std::string> seen;
  for (const auto& p : problems)
    seen.push_back(p["object"].get<std::string>() + ": " + p["reason"].get<std::string>());
  auto has = [&](const std::string& s) {
    for (const auto& x : seen)
      if (x.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("bad.yaml:1 Pod demo/no-ip: status.podIP is missing")) << st.dump(2);
  EXPECT_TRUE(has("bad.yaml:6 Pod demo/bad-ip: status.podIP '10.1.2.300' is not an IPv4 address"))
      << st.dump(2);
  EXPECT_TRUE(has("broken.yaml:4: YAML syntax error: end of sequence flow not found"))
      << st.dump(2);
  EXPECT_EQ(problems.size(), 3u) << st.dump(2);
  ASSERT_EQ(st["agent"]["config"]["notices"].size(), 1u);
  EXPECT_NE(st["agent"]["config"]["notices"][0]["reason"].get<std::string>().find(
                "kind ConfigMap (v1) is not handled by this version; skipped"),
            std::string::npos);
  // The good pods are meshed and short-circuited.
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7401));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), "hi"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), 2));
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_REDIRECTED), 1u);
  // The table form says the same to a person.
  ASSERT_OK_AND_ASSIGN(std::string text,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                                       node_->api_socket(), " status")));
  EXPECT_NE(text.find("REJECTED bad.yaml:6 Pod demo/bad-ip"), std::string::npos) << text;
  // And so does the agent log.
  EXPECT_NE(node_->AgentLog().find("rejected bad.yaml:1 Pod demo/no-ip: status.podIP is missing"),
            std::string::npos);
}

TEST_F(BadManifestTest, BreakingAGoodFileKeepsItsPodsMeshed) {
  ASSERT_OK(node_->ApplyConfigFile("pods.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n"));
  // The agent reports the broken file, but keeps the last good pods.
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, CtlStatus());
  bool found = false;
  for (const auto& p : st["agent"]["config"]["problems"])
    if (p["file"] == "pods.yaml") {
      found = true;
      EXPECT_NE(p["reason"].get<std::string>().find("keeping this file's last good objects"),
                std::string::npos);
    }
  ASSERT_TRUE(found) << st.dump(2);
  EXPECT_EQ(st["agent"]["config"]["pods"], 2);
  ASSERT_OK_AND_ASSIGN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(node_->bpffs()), true));
  ASSERT_OK_AND_ASSIGN(auto eps, maps->endpoints().Keys());
  EXPECT_EQ(eps.size(), 2u);
  // Fixing the file is picked up as well.
  ASSERT_OK(node_->ApplyManifests());
  ASSERT_OK_AND_ASSIGN(st, CtlStatus());
  EXPECT_EQ(st["agent"]["config"]["problems"].size(), 3u) << st.dump(2);
}

// Outside input that once ended the agent: bytes that are not UTF-8 in a
// file name and in a manifest value (JSON output threw on them), and a
// local API request with a field of the wrong type (its parser threw).
TEST_F(BadManifestTest, HostileInputGetsAnErrorAndTheAgentLives) {
  ASSERT_OK(node_->ApplyConfigFile("caf\xE9.yaml",
                                   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {}\n"));
  ASSERT_OK(node_->ApplyConfigFile(
      "latin1.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: y, namespace: caf\xE9}\n"));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
  std::string problems;
  for (const auto& p : st["config"]["problems"]) problems += p["object"].get<std::string>() + "\n";
  EXPECT_NE(problems.find("caf\xEF\xBF\xBD.yaml"), std::string::npos)
      << "the file is named, its bad byte replaced: " << problems;
  bool utf8_reported = false;
  for (const auto& p : st["config"]["problems"])
    utf8_reported |= p["file"] == "latin1.yaml" &&
                     p["reason"].get<std::string>().find("not valid UTF-8") != std::string::npos;
  EXPECT_TRUE(utf8_reported) << st.dump(2);

  auto answer = http::UnixRequest(node_->api_socket(), "POST", "/v1/policy/check",
                                  R"({"from":"demo/a","to":"demo/b","port":80,"proto":6})");
  ASSERT_OK(answer.status());
  EXPECT_EQ(answer->status, 400);
  EXPECT_NE(answer->body.find("--proto must be tcp or udp"), std::string::npos) << answer->body;
  answer = http::UnixRequest(node_->api_socket(), "POST", "/v1/policy/check",
                             R"({"from":1,"to":[],"port":"x"})");
  ASSERT_OK(answer.status());
  EXPECT_NE(answer->body.find("\"error\""), std::string::npos) << answer->body;
  // Still alive and serving.
  EXPECT_OK(node_->AgentStatus().status());
  EXPECT_EQ(kill(node_->agent_pid(), 0), 0) << "the agent ended";
}

}  // namespace
}  // namespace shunt::e2e
