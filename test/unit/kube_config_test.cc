#include "agent/source/kube/kube_config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"

namespace shunt::source::kube {
namespace {

namespace fs = std::filesystem;

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt-kubeconfig-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string Kubeconfig(const std::string& cluster, const std::string& user) {
    return Write("config",
                 "apiVersion: v1\nkind: Config\ncurrent-context: kind\n"
                 "contexts:\n- name: other\n  context: {cluster: c2, user: u2}\n"
                 "- name: kind\n  context: {cluster: c1, user: u1, namespace: apps}\n"
                 "clusters:\n- name: c1\n  cluster:\n" +
                     cluster + "users:\n- name: u1\n  user:\n" + user);
  }
  std::string dir_;
};

TEST_F(KubeConfigTest, CurrentContextWithCaDataAndToken) {
  std::string ca_b64;
  absl::Base64Escape("-----BEGIN CERTIFICATE-----\nabc\n", &ca_b64);
  auto c =
      LoadKubeconfig(Kubeconfig("    server: https://127.0.0.1:6443/\n"
                                "    certificate-authority-data: " +
                                    ca_b64 + "\n    tls-server-name: kubernetes\n",
                                "    token: secret\n    tokenFile: ignored\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");  // trailing slash gone
  EXPECT_EQ(c->ca_pem, "-----BEGIN CERTIFICATE-----\nabc\n");
  EXPECT_EQ(c->tls_server_name, "kubernetes");
  EXPECT_EQ(c->token, "secret");  // token wins over tokenFile
  EXPECT_EQ(c->token_file, "");
  EXPECT_EQ(c->namespace_, "apps");
  EXPECT_FALSE(c->insecure_skip_tls_verify);
  EXPECT_NE(c->where.find("context kind"), std::string::npos) << c->where;
}

TEST_F(KubeConfigTest, FilesAreRelativeToTheKubeconfig) {
  Write("ca.pem", "CA");
  Write("client.crt", "CERT");
  Write("client.key", "KEY");
  auto c = LoadKubeconfig(Kubeconfig(
      "    server: https://api:443\n    certificate-authority: ca.pem\n"
      "    insecure-skip-tls-verify: true\n",
      "    client-certificate: client.crt\n    client-key: client.key\n    tokenFile: tok\n"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->ca_where, dir_ + "/ca.pem");
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_EQ(c->client_key_pem, "KEY");
  EXPECT_EQ(c->token_file, dir_ + "/tok");
  EXPECT_TRUE(c->insecure_skip_tls_verify);
}

TEST_F(KubeConfigTest, PluginsAreRefusedByName) {
  auto exec = LoadKubeconfig(
      Kubeconfig("    server: https://api:443\n", "    exec:\n      command: aws\n"));
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.status().message().find("exec plugin"), std::string::npos) << exec.status();
  auto ap = LoadKubeconfig(
      Kubeconfig("    server: https://api:443\n", "    auth-provider:\n      name: gcp\n"));
  ASSERT_FALSE(ap.ok());
  EXPECT_NE(ap.status().message().find("auth-provider plugin"), std::string::npos) << ap.status();
}

TEST_F(KubeConfigTest, ErrorsNameTheFileAndWhatIsWrong) {
  auto no_file = LoadKubeconfig(dir_ + "/absent");
  ASSERT_FALSE(no_file.ok());
  EXPECT_NE(no_file.status().message().find(dir_ + "/absent"), std::string::npos);

  auto bad_server = LoadKubeconfig(Kubeconfig("    server: 10.0.0.1\n", "    token: t\n"));
  ASSERT_FALSE(bad_server.ok());
  EXPECT_NE(bad_server.status().message().find("'10.0.0.1' is not an http(s) URL"),
            std::string::npos)
      << bad_server.status();

  auto missing_ca = LoadKubeconfig(
      Kubeconfig("    server: https://a\n    certificate-authority: nope.pem\n", "    token: t\n"));
  ASSERT_FALSE(missing_ca.ok());
  EXPECT_NE(missing_ca.status().message().find("nope.pem"), std::string::npos);

  auto half_cert =
      LoadKubeconfig(Kubeconfig("    server: https://a\n", "    client-certificate-data: Zm9v\n"));
  ASSERT_FALSE(half_cert.ok());
  EXPECT_NE(half_cert.status().message().find("needs both"), std::string::npos);

  const std::string no_context =
      Write("c2", "apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n");
  auto gone = LoadKubeconfig(no_context);
  ASSERT_FALSE(gone.ok());
  EXPECT_NE(gone.status().message().find("no contexts entry named 'gone'"), std::string::npos)
      << gone.status();

  auto syntax = LoadKubeconfig(Write("c3", "clusters: [\n"));
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find(dir_ + "/c3"), std::string::npos);
}

TEST_F(KubeConfigTest, InClusterReadsTheServiceAccount) {
  Write("token", "tok-1\n");
  Write("ca.crt", "CA");
  Write("namespace", "shunt-system\n");
  auto c = InClusterConfig(
      {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, dir_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->namespace_, "shunt-system");
  EXPECT_EQ(c->token_file, dir_ + "/token");

  auto v6 = InClusterConfig(
      {{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "443"}}, dir_);
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->server, "https://[fd00::1]:443");

  auto outside = InClusterConfig({}, dir_);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.status().message().find("--kubeconfig"), std::string::npos);
}

TEST_F(KubeConfigTest, TokenFileIsReadAgainAfterAMinuteOrA401) {
  const std::string path = Write("token", "one\n");
  lib::FakeClock clock(1'000'000'000, 0);
  TokenSource tokens(KubeConfig{.token_file = path}, clock);
  EXPECT_EQ(*tokens.Token(), "one");
  Write("token", "two\n");            // rotated by the kubelet
  EXPECT_EQ(*tokens.Token(), "one");  // within the minute
  clock.Advance(61'000'000'000);
  EXPECT_EQ(*tokens.Token(), "two");
  Write("token", "three\n");
  tokens.Invalidate();  // a 401
  EXPECT_EQ(*tokens.Token(), "three");
  // A file that vanishes mid-rotation: the last token is still tried.
  fs::remove(path);
  tokens.Invalidate();
  EXPECT_EQ(*tokens.Token(), "three");

  TokenSource fixed(KubeConfig{.token = "static", .token_file = path}, clock);
  EXPECT_EQ(*fixed.Token(), "static");
  TokenSource missing(KubeConfig{.token_file = dir_ + "/none"}, clock);
  EXPECT_FALSE(missing.Token().ok());
}

}  // namespace
}  // namespace shunt::source::kube
