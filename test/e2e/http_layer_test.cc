// The agent's HTTP layer as clients meet it: health and readiness on the
// metrics listener, and clients that misbehave on the local API (thousands
// of idle connections, a request whose answer is never read) stall neither
// the API nor the agent's reconcile loop.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/http/client.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;

lib::UniqueFd ConnectUnix(const std::string& path) {
  lib::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return lib::UniqueFd();
  return fd;
}

class HttpLayerTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh({"--metrics-addr=127.0.0.1:0"});
    ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
    addr_ = st["metrics_addr"].get<std::string>();
  }
  std::string addr_;
};

TEST_F(HttpLayerTest, HealthAndReadinessAnswer) {
  ASSERT_OK_AND_ASSIGN(std::string health, HttpGetInNode(*node_, addr_, "/healthz"));
  EXPECT_EQ(health, "ok\n");
  ASSERT_OK_AND_ASSIGN(std::string ready, HttpGetInNode(*node_, addr_, "/readyz"));
  EXPECT_THAT(ready, HasSubstr("ready: data path installed, objects applied"));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
  EXPECT_EQ(st["ready"], true);
  EXPECT_EQ(st["source"]["source"], "file");
}

TEST_F(HttpLayerTest, IdleFloodsAndNonReadersStallNeitherTheApiNorTheLoop) {
  // A thousand connections that never send a byte.
  std::vector<lib::UniqueFd> idle;
  for (int i = 0; i < 1000; ++i) {
    lib::UniqueFd c = ConnectUnix(node_->api_socket());
    if (c.valid()) idle.push_back(std::move(c));
  }
  ASSERT_GT(idle.size(), 900u);
  // Requests for a large answer that are never read.
  std::vector<lib::UniqueFd> deaf;
  for (int i = 0; i < 20; ++i) {
    lib::UniqueFd c = ConnectUnix(node_->api_socket());
    ASSERT_TRUE(c.valid());
    const std::string req = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_EQ(write(c.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
    deaf.push_back(std::move(c));
  }
  // The API answers a real client at once...
  auto r = http::UnixRequest(node_->api_socket(), "GET", "/v1/status", "", 2000);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->status, 200);
  // ...shuntctl works as usual...
  ASSERT_OK_AND_ASSIGN(std::string out,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                                       node_->api_socket(), " status -o json")));
  EXPECT_EQ(nlohmann::json::parse(out)["agent"]["running"], true) << out;
  // ...and the loop still applies a change on disk.
  ASSERT_OK(node_->ApplyConfigFile("extra.yaml", R"(apiVersion: v1
kind: Pod
metadata: {name: extra, namespace: demo}
spec: {nodeName: elsewhere}
status: {podIP: 10.99.0.7}
)"));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
  EXPECT_EQ(st["config"]["pods"], 3);
  // The flood is visible in the agent's own metrics.
  ASSERT_OK_AND_ASSIGN(std::string metrics, HttpGetInNode(*node_, addr_, "/metrics"));
  EXPECT_THAT(metrics, HasSubstr("shunt_http_connections_closed_total{reason=\"evicted\"}"));
}

}  // namespace
}  // namespace shunt::e2e
