// shunt.dev/short-circuit: "off" on a pod or on its namespace: the pod
// stays meshed (policy, telemetry) and its same-node connections take TCP,
// as `shuntctl endpoints` and `flows` say.
#include <sys/socket.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "shunt/abi/sockmap.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class OptOutTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(legacy_,
                         node_->AddPod({.name = "legacy",
                                        .namespace_ = "demo",
                                        .service_account = "legacy",
                                        .annotations = {{"shunt.dev/short-circuit", "off"}}}));
    ASSERT_OK_AND_ASSIGN(
        old_, node_->AddPod({.name = "old", .namespace_ = "old-apps", .service_account = "old"}));
    ASSERT_OK(node_->WriteConfigFile("namespaces.yaml", R"(apiVersion: v1
kind: Namespace
metadata:
  name: old-apps
  annotations:
    shunt.dev/short-circuit: "off"
)"));
    StartMesh();
  }
  // Payload bytes through the client's veth while 1 MiB goes to `to`, after
  // a first exchange.
  uint64_t VethBytesTo(const TestPod& to, uint16_t port) {
    auto c = Connect(*client_, to, port);
    EXPECT_OK(c.status());
    if (!c.ok()) return 0;
    EXPECT_OK(WarmUp(c->client.get(), c->server.get()));
    auto before = node_->VethBytes(*client_);
    const std::string data = RandomBytes(1 << 20, port);
    std::thread w([&] { EXPECT_OK(WriteAll(c->client.get(), data)); });
    auto got = ReadExactly(c->server.get(), data.size());
    w.join();
    EXPECT_OK(got.status());
    auto after = node_->VethBytes(*client_);
    return before.ok() && after.ok() ? *after - *before : 0;
  }
  TestPod* legacy_ = nullptr;
  TestPod* old_ = nullptr;
};

TEST_F(OptOutTest, APodOrNamespaceAnnotatedOffTakesTcpAndSaysSo) {
  EXPECT_LT(VethBytesTo(*server_, 7951), 64u * 1024) << "the plain pod is short-circuited";
  EXPECT_GE(VethBytesTo(*legacy_, 7952), 1u << 20) << "the opted-out pod took the short-circuit";
  EXPECT_GE(VethBytesTo(*old_, 7953), 1u << 20) << "the opted-out namespace took the short-circuit";

  ASSERT_OK_AND_ASSIGN(std::string eps, Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(),
                                                        " endpoints -o json")));
  auto rows = nlohmann::json::parse(eps, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << eps;
  std::map<std::string, std::string> path;
  for (const auto& r : rows) path[r.value("name", "?")] = r.value("path", "?");
  EXPECT_EQ(path["server"], "short-circuit");
  EXPECT_EQ(path["legacy"], "tcp (opted-out: shunt.dev/short-circuit)");
  EXPECT_EQ(path["old"], "tcp (opted-out: shunt.dev/short-circuit)");

  ASSERT_OK_AND_ASSIGN(auto flows, WaitFlows(*node_, "--state closed --port 7952", 1));
  EXPECT_EQ(flows[0]["path"], "tcp") << flows[0].dump();
  EXPECT_EQ(flows[0]["tcp_reason"], "opted-out") << flows[0].dump();
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> reasons, node_->TcpReasonCounts());
  // Once per flow: the two opted-out servers' flows.
  EXPECT_EQ(reasons[SHUNT_TCP_OPTED_OUT], 2u);
  EXPECT_EQ(reasons[SHUNT_TCP_PEER_MISSING], 0u);
}

}  // namespace
}  // namespace shunt::e2e
