// What the receiving proxy refuses (docs/mtls.md "What the receiving proxy
// checks"): the test plays another node's proxy with a tunnel client of its
// own (harness/tunnel_client.h) and presents what a hostile or broken node
// would: another CA's certificate, a certificate of one pod claiming
// another pod's address, a CONNECT to something that is no pod of the
// node. Each is refused, counted by reason, and the proxy stays up.
#include <arpa/inet.h>
#include <sys/socket.h>

#include "shunt/abi/counters.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mtls_fixture.h"
#include "test/e2e/harness/tunnel_client.h"

namespace shunt::e2e {
namespace {

class MtlsRefusalTest : public MtlsMeshTest {
 protected:
  // A tunnel client from node 1's namespace to node 2's proxy.
  absl::StatusOr<std::unique_ptr<TestTunnelClient>> Dial(const proxy::TlsCredentials& creds) {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd fd, n1_->NodeSocket(SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(ConnectTo(fd.get(), n2_->link_ip(), 15008));
    return TestTunnelClient::Create(std::move(fd), creds);
  }
  std::string ForClient() const { return "for=" + client_->ip; }
};

TEST_F(MtlsRefusalTest, ACertificateOfAnotherCaIsRefusedAtTheHandshake) {
  const std::string other = n1_->work_dir() + "/other-ca";
  ASSERT_OK(Sh(absl::StrCat(SHUNTCTL_BIN, " ca init --dir ", other)).status());
  // Signed by the other CA; it trusts the cluster's CA, so only the
  // proxy's check of the client can fail.
  ASSERT_OK_AND_ASSIGN(auto creds, ClientCredentials(other, "demo", "client", ca_dir_));
  ASSERT_OK_AND_ASSIGN(auto c, Dial(creds));
  // TLS 1.3: the client is done after its Finished; the server's verdict on
  // the client's certificate (an alert, then the close) comes after it.
  absl::Status handshake = c->Handshake();
  if (handshake.ok()) {
    EXPECT_FALSE(c->Connect(absl::StrCat(server_->ip, ":7100"), "for=" + client_->ip).ok());
  }
  ASSERT_OK(WaitRefusal(*n2_, "unknown-ca"));
  EXPECT_GE(ProxyCounter(*n2_, "inbound_handshake_refused"), 1u);
  // The proxy is still up: a real connection goes through.
  ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(7100));
  ASSERT_OK(WriteAll(p.client.get(), "ok"));
  ASSERT_OK_AND_ASSIGN(std::string ok, ReadExactly(p.server.get(), 2));
}

TEST_F(MtlsRefusalTest, ACertificateCannotSpeakForAnotherPod) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7101));
  const std::string to = absl::StrCat(server_->ip, ":7101");
  // demo/local's certificate, claiming to carry the client pod's connection.
  ASSERT_OK_AND_ASSIGN(auto creds, ClientCredentials(ca_dir_, "demo", "local"));
  ASSERT_OK_AND_ASSIGN(auto c, Dial(creds));
  ASSERT_OK(c->Handshake());
  ASSERT_OK_AND_ASSIGN(int stolen, c->Connect(to, ForClient()));
  EXPECT_EQ(stolen, 403);
  ASSERT_OK(WaitRefusal(*n2_, "identity-mismatch"));
  // shuntctl drops names the refusal, the identity proven and the pod asked for.
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n2_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "mtls" || d["reason"] != "identity-mismatch") continue;
    ++seen;
    EXPECT_EQ(d["peer_identity"], "spiffe://cluster.local/ns/demo/sa/local");
    EXPECT_EQ(d["src_ip"], client_->ip);
    EXPECT_EQ(d["dst_ip"], server_->ip);
    EXPECT_EQ(d["dst_port"], 7101);
    EXPECT_EQ(d["hook"], "proxy");
  }
  EXPECT_EQ(seen, 1);
  // No claim at all is refused too; its own pod's address is not.
  ASSERT_OK_AND_ASSIGN(int anonymous, c->Connect(to, ""));
  EXPECT_EQ(anonymous, 400);
  ASSERT_OK_AND_ASSIGN(int own, c->Connect(to, "for=" + local_->ip));
  EXPECT_EQ(own, 200);
}

TEST_F(MtlsRefusalTest, AConnectToWhatIsNoPodOfTheNodeIsRefused) {
  ASSERT_OK_AND_ASSIGN(auto creds, ClientCredentials(ca_dir_, "demo", "client"));
  ASSERT_OK_AND_ASSIGN(auto c, Dial(creds));
  ASSERT_OK(c->Handshake());
  // A pod of the other node, the node itself, a name, garbage.
  ASSERT_OK_AND_ASSIGN(int other_node, c->Connect(local_->ip + ":80", ForClient()));
  EXPECT_EQ(other_node, 404);
  ASSERT_OK_AND_ASSIGN(int node, c->Connect(n2_->link_ip() + ":22", ForClient()));
  EXPECT_EQ(node, 404);
  ASSERT_OK_AND_ASSIGN(int name, c->Connect("server.demo:80", ForClient()));
  EXPECT_EQ(name, 400);
  ASSERT_OK(WaitRefusal(*n2_, "not-a-local-pod", 2));
  ASSERT_OK(WaitRefusal(*n2_, "bad-authority"));
  // The same tunnel still carries an allowed stream.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7102));
  ASSERT_OK_AND_ASSIGN(int ok, c->Connect(absl::StrCat(server_->ip, ":7102"), ForClient()));
  EXPECT_EQ(ok, 200);
}

constexpr char kGrant8080[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: port-8080, namespace: demo}
spec: {matches: {ports: [8080]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-server, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: port-8080}]
)";

// Node 1 permissive (its connect-time check lets everything out), node 2
// enforcing: the receiving proxy is what decides.
class MtlsPolicyTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n2_flags_ = {"--mode=enforce"};
    policy_yaml_ = kGrant8080;
    MtlsMeshTest::SetUp();
  }
};

TEST_F(MtlsPolicyTest, TheReceivingProxyEnforcesSmiPolicyOnTheProvenIdentity) {
  ASSERT_OK_AND_ASSIGN(Pair granted, CrossNode(8080));
  ASSERT_OK(WriteAll(granted.client.get(), "granted"));
  ASSERT_OK_AND_ASSIGN(std::string g, ReadExactly(granted.server.get(), 7));
  EXPECT_EQ(g, "granted");

  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 9090));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), server_->ip, 9090));
  EXPECT_FALSE(ReadToEof(c.get()).ok()) << "a denied connection ended cleanly";
  ASSERT_OK(WaitRefusal(*n2_, "policy-denied"));
  EXPECT_FALSE(AcceptOne(l.get(), 200).ok()) << "the server got a denied connection";
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// Node 1 sends in the clear (its agent runs without mTLS, as a node
// outside the mesh's mTLS would); node 2 receives with strict or permissive.
class MtlsPlaintextTest : public MtlsMeshTest {
 protected:
  void Start(const std::string& n2_mode) {
    n1_flags_ = {"--mtls=off"};
    n2_flags_ = {"--mtls=" + n2_mode};
    MtlsMeshTest::SetUp();
  }
  void SetUp() override {}  // each test starts with its mode
  uint64_t Counter(TestNode& n, int idx) {
    auto c = n.Counters();
    return c.ok() ? (*c)[idx] : 0;
  }
};

TEST_F(MtlsPlaintextTest, StrictModeDropsPlaintextFromAnotherNode) {
  Start("strict");
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7400));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  EXPECT_FALSE(ConnectsWithin(c.get(), server_->ip, 7400, 1000));
  EXPECT_GE(Counter(*n2_, SHUNT_CTR_MTLS_PLAINTEXT_DROPPED), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n2_));
  int seen = 0;
  for (const auto& d : drops)
    if (d["type"] == "plaintext-from-node" && d["src_ip"] == client_->ip && d["enforced"] == true)
      ++seen;
  EXPECT_GE(seen, 1);
}

TEST_F(MtlsPlaintextTest, PermissiveModeAcceptsAndReportsIt) {
  Start("permissive");
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7401));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), server_->ip, 7401));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(l.get()));
  ASSERT_OK(WriteAll(c.get(), "clear"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), 5));
  EXPECT_EQ(Counter(*n2_, SHUNT_CTR_MTLS_PLAINTEXT_ACCEPTED), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n2_));
  int seen = 0;
  for (const auto& d : drops)
    if (d["type"] == "plaintext-from-node" && d["enforced"] == false) ++seen;
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// Node 2 runs without mTLS (no proxy listens there); node 1 sends.
class MtlsMeshlessPeerTest : public MtlsMeshTest {
 protected:
  void Start(const std::string& n1_mode) {
    n1_flags_ = {"--mtls=" + n1_mode};
    n2_flags_ = {"--mtls=off"};
    MtlsMeshTest::SetUp();
  }
  void SetUp() override {}  // each test starts with its mode
};

TEST_F(MtlsMeshlessPeerTest, PermissiveModeReachesAMeshlessNodeInPlaintext) {
  Start("permissive");
  if (IsSkipped() || HasFatalFailure()) return;
  for (int i = 0; i < 2; ++i) {  // the first finds the node meshless, the second knows it
    ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(7500 + i));
    ASSERT_OK(WriteAll(p.client.get(), "hello"));
    ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(p.server.get(), 5));
    ASSERT_OK(WriteAll(p.server.get(), "world"));
    ASSERT_OK_AND_ASSIGN(std::string back, ReadExactly(p.client.get(), 5));
    EXPECT_EQ(back, "world");
  }
  ASSERT_OK(WaitCounter(*n1_, "plaintext_to_meshless_node", 2));
  EXPECT_EQ(ProxyCounter(*n1_, "tunnels_opened"), 0u);
}

TEST_F(MtlsMeshlessPeerTest, StrictModeNeverFallsBackToPlaintext) {
  Start("strict");
  if (IsSkipped() || HasFatalFailure()) return;
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7510));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), server_->ip, 7510));  // the local proxy accepts ...
  EXPECT_FALSE(ReadToEof(c.get()).ok());             // ... and resets: no tunnel possible
  EXPECT_FALSE(AcceptOne(l.get(), 200).ok()) << "the server got a plaintext connection";
  ASSERT_OK(WaitCounter(*n1_, "tunnel_handshake_failures", 1));
  EXPECT_EQ(ProxyCounter(*n1_, "plaintext_to_meshless_node"), 0u);
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// Broken and hostile peers at the proxy's inbound port: each gets a bounded
// cost, a counted refusal, and the proxy stays up for everyone else.
class MtlsBadPeerTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n2_flags_ = {"--proxy-handshake-timeout=500ms"};
    MtlsMeshTest::SetUp();
  }
  absl::StatusOr<lib::UniqueFd> RawToProxy() {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd fd, n1_->NodeSocket(SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(ConnectTo(fd.get(), n2_->link_ip(), 15008));
    return fd;
  }
  // A real connection still goes through node 2's proxy.
  void ExpectProxyServes(uint16_t port) {
    ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(port));
    ASSERT_OK(WriteAll(p.client.get(), "alive"));
    ASSERT_OK_AND_ASSIGN(std::string a, ReadExactly(p.server.get(), 5));
  }
};

TEST_F(MtlsBadPeerTest, AHandshakeThatNeverCompletesIsDropped) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd fd, RawToProxy());
  // Nothing sent: the proxy closes it after --proxy-handshake-timeout.
  ASSERT_OK_AND_ASSIGN(std::string got, ReadToEof(fd.get(), 5000));
  EXPECT_TRUE(got.empty());
  ASSERT_OK(WaitRefusal(*n2_, "handshake-timeout"));
  EXPECT_EQ(ProxyCounter(*n2_, "inbound_handshake_timeouts"), 1u);
  ExpectProxyServes(7600);
}

TEST_F(MtlsBadPeerTest, BytesThatAreNotTlsAreRefused) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd fd, RawToProxy());
  ASSERT_OK(WriteAll(fd.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  (void)ReadToEof(fd.get(), 5000);  // an alert, then the close
  ASSERT_OK(WaitRefusal(*n2_, "tls-handshake-failed"));
  // A TLS record cut short, then nothing: the handshake deadline ends it.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd cut, RawToProxy());
  ASSERT_OK(WriteAll(cut.get(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  (void)ReadToEof(cut.get(), 5000);
  ASSERT_OK(WaitRefusal(*n2_, "handshake-timeout"));
  ExpectProxyServes(7601);
}

TEST_F(MtlsBadPeerTest, AFrameFloodEndsOnlyThatTunnel) {
  ASSERT_OK_AND_ASSIGN(auto creds, ClientCredentials(ca_dir_, "demo", "client"));
  // A small receive buffer: the proxy's answers back up at once.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd fd, n1_->NodeSocket(SOCK_STREAM));
  const int small = 4096;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  ASSERT_OK(ConnectTo(fd.get(), n2_->link_ip(), 15008));
  ASSERT_OK_AND_ASSIGN(auto c, TestTunnelClient::Create(std::move(fd), creds));
  ASSERT_OK(c->Handshake());
  // 300,000 PINGs whose answers are not read while they are sent: the
  // proxy holds at most 1 MiB of answers, then nghttp2 at most 1,000
  // more, then it gives up on the tunnel.
  // (The client's preface and SETTINGS went out with the handshake.)
  std::string flood;
  const std::string ping("\x00\x00\x08\x06\x00\x00\x00\x00\x00pingpong", 17);
  for (int i = 0; i < 300000; ++i) flood += ping;
  ASSERT_OK(c->SendRawUntilClosed(flood, 10000));
  ASSERT_OK(WaitRefusal(*n2_, "protocol-error"));
  ExpectProxyServes(7602);
}

}  // namespace
}  // namespace shunt::e2e
