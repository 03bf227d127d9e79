// Workload certificates as an operator meets them (docs/mtls.md): a CA made
// with `shuntctl ca init`, the agent started with --mtls and --ca-dir, and
// `shuntctl certs` listing one certificate per local identity, issued by
// that CA, with the pods that use it.
#include "absl/strings/str_cat.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class CertsTest : public MeshTest {
 protected:
  absl::StatusOr<std::string> Ctl(const std::string& args) {
    return Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                           node_->api_socket(), " ", args));
  }
};

TEST_F(CertsTest, TheAgentIssuesOneCertificatePerLocalIdentityFromTheClusterCa) {
  const std::string ca = node_->work_dir() + "/ca";
  ASSERT_OK_AND_ASSIGN(std::string init, Ctl("ca init --dir " + ca));
  EXPECT_NE(init.find("ca.key"), std::string::npos) << init;
  // A second init never replaces the CA.
  EXPECT_FALSE(Ctl("ca init --dir " + ca).ok());

  // One node, no default route in its namespace: the proxy listens on loopback.
  StartMesh({"--mtls=strict", "--ca-dir=" + ca, "--trust-domain=test.local", "--cert-ttl=1h",
             "--node-ip=127.0.0.1"});
  ASSERT_OK_AND_ASSIGN(std::string out, Ctl("certs -o json"));
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["mtls"], "strict");
  EXPECT_EQ(j["trust_domain"], "test.local");
  std::map<std::string, nlohmann::json> by_id;
  for (const auto& c : j["certificates"]) by_id[c.value("identity", "?")] = c;
  // client, server, and the node proxy's own (the server end of tunnels).
  ASSERT_EQ(by_id.size(), 3u) << out;
  EXPECT_EQ(by_id.count("spiffe://test.local/ns/shunt-system/sa/shunt-proxy"), 1u) << out;
  const auto& client = by_id["spiffe://test.local/ns/demo/sa/client"];
  ASSERT_TRUE(client.is_object()) << out;
  EXPECT_EQ(client["pods"], nlohmann::json::array({"client"}));
  EXPECT_GT(client["expires_in_s"].get<int64_t>(), 3500);
  EXPECT_LE(client["expires_in_s"].get<int64_t>(), 3600);
  EXPECT_GT(client["renew_in_s"].get<int64_t>(), 1700);
  EXPECT_FALSE(client["serial"].get<std::string>().empty());
  EXPECT_EQ(out.find("PRIVATE KEY"), std::string::npos) << "a key left the agent";

  ASSERT_OK_AND_ASSIGN(std::string table, Ctl("certs"));
  EXPECT_NE(table.find("spiffe://test.local/ns/demo/sa/server"), std::string::npos) << table;
  ASSERT_OK_AND_ASSIGN(std::string status, Ctl("status -o json"));
  auto st = nlohmann::json::parse(status, nullptr, false);
  EXPECT_EQ(st["agent"]["mtls"]["identities"], 3) << status;
}

}  // namespace
}  // namespace shunt::e2e
