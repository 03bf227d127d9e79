// Mutual TLS between proxies (proxy/tls): a workload client and a node-proxy
// server back to back in memory. The handshake proves both identities, and
// each way a certificate or a peer can be wrong ends it with its reason.
#include "proxy/tls/tls_channel.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "agent/certs/authority.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/e2e/harness/status_matchers.h"

namespace shunt::proxy {
namespace {

using ::testing::HasSubstr;
const absl::Time kNow = absl::FromUnixSeconds(1796000000);

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = NewCa(dir_a_);
    other_ca_ = NewCa(dir_b_);
    ASSERT_TRUE(ca_ && other_ca_);
    proxy_id_ = *certs::MakeSpiffeId("cluster.local", "shunt-system", "shunt-proxy");
    web_id_ = *certs::MakeSpiffeId("cluster.local", "demo", "web");
  }
  void TearDown() override { std::system(absl::StrCat("rm -rf ", dir_a_, " ", dir_b_).c_str()); }
  std::unique_ptr<certs::Authority> NewCa(std::string& dir) {
    char tmpl[] = "/tmp/shunt-tls-XXXXXX";
    dir = mkdtemp(tmpl);
    if (!certs::InitAuthority(dir, kNow).ok()) return nullptr;
    auto ca = certs::Authority::Load(dir, kNow);
    return ca.ok() ? std::move(*ca) : nullptr;
  }
  TlsCredentials Creds(const certs::Authority& issuer, const certs::SpiffeId& id,
                       absl::Duration ttl = absl::Hours(24)) {
    auto c = issuer.Issue(id, ttl, kNow);
    EXPECT_TRUE(c.ok()) << c.status();
    return {.cert_pem = c->cert_pem,
            .key_pem = c->key_pem,
            .ca_pem = ca_->cert_pem(),
            .verify_time = kNow + absl::Hours(1)};
  }
  // Handshakes a client and a server channel; false if either failed.
  bool Handshake(TlsCredentials client, TlsCredentials server) {
    auto cc = TlsContext::Create(TlsContext::Role::kClient, client);
    auto sc = TlsContext::Create(TlsContext::Role::kServer, server);
    EXPECT_TRUE(cc.ok() && sc.ok());
    client_ = std::move(*TlsChannel::Create(*cc));
    server_ = std::move(*TlsChannel::Create(*sc));
    for (int i = 0; i < 20; ++i) {
      std::string a, b;
      client_->TakeOutput(&a);
      if (!a.empty() && !server_->Feed(a).ok()) break;
      server_->TakeOutput(&b);
      if (!b.empty() && !client_->Feed(b).ok()) break;
      if (a.empty() && b.empty()) break;
    }
    // A refusal by the server reaches the client as an alert.
    std::string alert;
    server_->TakeOutput(&alert);
    if (!alert.empty()) (void)client_->Feed(alert);
    return client_->established() && server_->established() && !client_->failed() &&
           !server_->failed();
  }
  std::string dir_a_, dir_b_;
  std::unique_ptr<certs::Authority> ca_, other_ca_;
  certs::SpiffeId proxy_id_, web_id_;
  std::unique_ptr<TlsChannel> client_, server_;
};

TEST_F(TlsChannelTest, BothEndsProveTheirIdentityAndBytesFlowBothWays) {
  TlsCredentials client = Creds(*ca_, web_id_);
  client.expect_peer = proxy_id_;
  ASSERT_TRUE(Handshake(client, Creds(*ca_, proxy_id_))) << client_->error() << server_->error();
  EXPECT_EQ(server_->peer().Uri(), "spiffe://cluster.local/ns/demo/sa/web");
  EXPECT_EQ(client_->peer().Uri(), "spiffe://cluster.local/ns/shunt-system/sa/shunt-proxy");
  EXPECT_STREQ(server_->protocol(), "TLSv1.3");

  std::string up(1 << 20, 'u'), got, wire;
  for (size_t i = 0; i < up.size(); ++i) up[i] = static_cast<char>(i * 31);
  ASSERT_OK(client_->Write(up));
  client_->TakeOutput(&wire);
  EXPECT_EQ(wire.find(up.substr(1000, 64)), std::string::npos) << "plaintext on the wire";
  ASSERT_OK(server_->Feed(wire));
  EXPECT_TRUE(server_->Read(&got));
  EXPECT_EQ(got, up);
  ASSERT_OK(server_->Write("answer"));
  wire.clear();
  server_->TakeOutput(&wire);
  ASSERT_OK(client_->Feed(wire));
  std::string back;
  client_->Read(&back);
  EXPECT_EQ(back, "answer");
  // close_notify: the peer sees the end.
  client_->Close();
  wire.clear();
  client_->TakeOutput(&wire);
  ASSERT_OK(server_->Feed(wire));
  std::string rest;
  EXPECT_FALSE(server_->Read(&rest)) << "close_notify not seen";
}

TEST_F(TlsChannelTest, AClientOfAnotherCaIsRefusedAsUnknownCa) {
  EXPECT_FALSE(Handshake(Creds(*other_ca_, web_id_), Creds(*ca_, proxy_id_)));
  EXPECT_EQ(server_->refusal(), certs::Refusal::kUnknownCa) << server_->error();
  EXPECT_FALSE(server_->established());
}

TEST_F(TlsChannelTest, AnExpiredOrNotYetValidClientIsRefusedSayingWhich) {
  TlsCredentials server = Creds(*ca_, proxy_id_, absl::Hours(72));
  TlsCredentials expired = Creds(*ca_, web_id_, absl::Minutes(30));
  EXPECT_FALSE(Handshake(expired, server));
  EXPECT_EQ(server_->refusal(), certs::Refusal::kExpired) << server_->error();
  EXPECT_THAT(server_->error(), HasSubstr("expired at"));

  server.verify_time = kNow - absl::Hours(1);
  EXPECT_FALSE(Handshake(Creds(*ca_, web_id_), server));
  EXPECT_EQ(server_->refusal(), certs::Refusal::kNotYetValid) << server_->error();
}

TEST_F(TlsChannelTest, AClientRefusesAServerThatIsNotTheNodeProxy) {
  TlsCredentials client = Creds(*ca_, web_id_);
  client.expect_peer = proxy_id_;
  // A workload certificate of the right CA, posing as the proxy.
  EXPECT_FALSE(Handshake(client, Creds(*ca_, *certs::MakeSpiffeId("cluster.local", "demo", "db"))));
  EXPECT_EQ(client_->refusal(), certs::Refusal::kNoIdentity);
  EXPECT_THAT(client_->error(), HasSubstr("spiffe://cluster.local/ns/demo/sa/db, not"));
}

TEST_F(TlsChannelTest, AForeignTrustDomainIsRefused) {
  TlsCredentials server = Creds(*ca_, proxy_id_);
  EXPECT_FALSE(Handshake(Creds(*ca_, *certs::MakeSpiffeId("other.local", "demo", "web")), server));
  EXPECT_EQ(server_->refusal(), certs::Refusal::kForeignTrustDomain) << server_->error();
}

TEST_F(TlsChannelTest, Tls12AndGarbageAreRefused) {
  // A TLS 1.2 client (OpenSSL's own, with a valid certificate).
  auto server_ctx = TlsContext::Create(TlsContext::Role::kServer, Creds(*ca_, proxy_id_));
  ASSERT_TRUE(server_ctx.ok());
  auto server = TlsChannel::Create(*server_ctx);
  ASSERT_TRUE(server.ok());
  SSL_CTX* old = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION);
  SSL* ssl = SSL_new(old);
  BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_connect_state(ssl);
  SSL_do_handshake(ssl);
  char buf[4096];
  int n = BIO_read(out, buf, sizeof(buf));
  ASSERT_GT(n, 0);
  EXPECT_FALSE((*server)->Feed(absl::string_view(buf, n)).ok());
  EXPECT_THAT((*server)->error(), HasSubstr("unsupported protocol"));
  SSL_free(ssl);
  SSL_CTX_free(old);
  ERR_clear_error();

  auto garbage = TlsChannel::Create(*server_ctx);
  ASSERT_TRUE(garbage.ok());
  EXPECT_FALSE((*garbage)->Feed("GET / HTTP/1.1\r\n\r\n").ok());
  EXPECT_TRUE((*garbage)->failed());
}

}  // namespace
}  // namespace shunt::proxy
