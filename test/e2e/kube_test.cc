// The agent with --source=kube against the fake API server (test/kubeapi):
// pods and SMI policy come and go through the API, the watch breaks in the
// middle of a change, the agent restarts while the cluster keeps changing —
// each checked with real traffic between pods (errno, bytes, the veth's
// counters), not only with the agent's own status.
#include <arpa/inet.h>
#include <sys/socket.h>

#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"
#include "test/kubeapi/driver/fake_apiserver.h"

namespace shunt::e2e {
namespace {

using kubeapi::FakeApiServer;

constexpr uint16_t kPort = 8080;

nlohmann::json Route() {
  return nlohmann::json::parse(R"({"apiVersion":"specs.smi-spec.io/v1alpha4","kind":"TCPRoute",
    "metadata":{"name":"server-port","namespace":"demo"},"spec":{"matches":{"ports":[8080]}}})");
}

nlohmann::json Grant() {
  return nlohmann::json::parse(R"({"apiVersion":"access.smi-spec.io/v1alpha3",
    "kind":"TrafficTarget","metadata":{"name":"client-to-server","namespace":"demo"},
    "spec":{"destination":{"kind":"ServiceAccount","name":"server","namespace":"demo"},
      "sources":[{"kind":"ServiceAccount","name":"client","namespace":"demo"}],
      "rules":[{"kind":"TCPRoute","name":"server-port"}]}})");
}

class KubeTest : public MeshTest {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(node_, TestNode::Create("n1"));
    // In the node's namespace, where the agent runs: it reaches the API
    // server on 127.0.0.1 there.
    ASSERT_OK_AND_ASSIGN(server_api_,
                         FakeApiServer::Start({}, "/run/netns/" + node_->node_netns()));
    node_->UseApiServer(server_api_.get());
    ASSERT_OK_AND_ASSIGN(
        client_,
        node_->AddPod({.name = "client", .namespace_ = "demo", .service_account = "client"}));
    ASSERT_OK_AND_ASSIGN(
        server_,
        node_->AddPod({.name = "server", .namespace_ = "demo", .service_account = "server"}));
    ASSERT_OK(server_api_->Apply(Route()).status());
    ASSERT_OK(server_api_->Apply(Grant()).status());
    ASSERT_OK(node_->StartAgent({"--mode=enforce"}));
    ASSERT_OK(node_->WaitMeshed());
    auto l = node_->PodSocket(*server_, SOCK_STREAM);
    ASSERT_OK(l.status());
    listener_ = std::move(*l);
    ASSERT_OK(ListenOn(listener_.get(), kPort));
  }
  void TearDown() override {
    MeshTest::TearDown();  // the node (and its agent) first
    server_api_.reset();
  }

  // connect() from the client pod to the server pod: 0 or the errno.
  int TryConnect(lib::UniqueFd* keep = nullptr) {
    auto s = node_->PodSocket(*client_, SOCK_STREAM);
    if (!s.ok()) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(kPort);
    inet_pton(AF_INET, server_->ip.c_str(), &a.sin_addr);
    if (connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return errno;
    if (auto accepted = AcceptOne(listener_.get()); accepted.ok() && keep != nullptr) {
      *keep = std::move(*s);
      accepted_ = std::move(*accepted);
    }
    return 0;
  }
  absl::Status ConnectGives(int want, int timeout_ms = 5000) {
    return Eventually(
        absl::StrCat("connect() gives ", want),
        [&]() -> absl::Status {
          const int got = TryConnect();
          if (got == want) return absl::OkStatus();
          return absl::FailedPreconditionError(absl::StrCat("connect() gave ", got));
        },
        timeout_ms);
  }

  // Sends `size` bytes over the last connection TryConnect kept and
  // returns how many bytes the client's veth carried meanwhile.
  absl::StatusOr<uint64_t> VethBytesWhileSending(int fd, size_t size) {
    // A connection's first exchange takes TCP (docs/short-circuit.md).
    SHUNT_RETURN_IF_ERROR(WarmUp(fd, accepted_.get()));
    SHUNT_ASSIGN_OR_RETURN(uint64_t before, node_->VethBytes(*client_));
    const std::string payload = RandomBytes(size, size);
    SHUNT_RETURN_IF_ERROR(WriteAll(fd, payload));
    SHUNT_ASSIGN_OR_RETURN(std::string got, ReadExactly(accepted_.get(), payload.size()));
    if (Fnv1a(got) != Fnv1a(payload)) return absl::DataLossError("the payload changed");
    SHUNT_ASSIGN_OR_RETURN(uint64_t after, node_->VethBytes(*client_));
    return after - before;
  }

  std::unique_ptr<FakeApiServer> server_api_;
  lib::UniqueFd listener_, accepted_;
};

TEST_F(KubeTest, PolicyFromTheApiServerIsEnforcedAndFollowed) {
  // Granted: connects, and the bytes go socket to socket (the veth sees none).
  lib::UniqueFd conn;
  ASSERT_EQ(TryConnect(&conn), 0);
  ASSERT_OK_AND_ASSIGN(uint64_t veth, VethBytesWhileSending(conn.get(), 1 << 20));
  EXPECT_LT(veth, 4096u) << "the payload crossed the veth";

  // The grant is deleted at the API server: refused.
  ASSERT_OK(server_api_->Delete("access.smi-spec.io/v1alpha3", "TrafficTarget", "demo",
                                "client-to-server"));
  ASSERT_OK(ConnectGives(EPERM));
  // And given again.
  ASSERT_OK(server_api_->Apply(Grant()).status());
  ASSERT_OK(ConnectGives(0));
}

TEST_F(KubeTest, PodsComeAndGoThroughTheApi) {
  // A new pod is created: once at the API, it is meshed and policy knows it.
  ASSERT_OK_AND_ASSIGN(
      TestPod * other,
      node_->AddPod({.name = "other", .namespace_ = "demo", .service_account = "client"}));
  ASSERT_OK(node_->WaitMeshed());
  // `other` has the client's service account: it has the client's grant.
  auto s = node_->PodSocket(*other, SOCK_STREAM);
  ASSERT_OK(s.status());
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(kPort);
  inet_pton(AF_INET, server_->ip.c_str(), &a.sin_addr);
  EXPECT_EQ(connect(s->get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << strerror(errno);
  ASSERT_OK(AcceptOne(listener_.get()).status());  // so the next accept is the client's

  // The server pod is deleted at the API (its process lives on here, as a
  // pod's may while it terminates): it leaves the mesh, so its traffic is
  // no longer short-circuited but crosses the veth like any unmeshed peer's.
  ASSERT_OK(server_api_->Delete("v1", "Pod", "demo", "server"));
  ASSERT_OK(Eventually("server unmeshed", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
    for (const auto& p : st["local_pods"])
      if (p["pod"] == "demo/server") return absl::FailedPreconditionError(st.dump());
    return absl::OkStatus();
  }));
  lib::UniqueFd conn;
  ASSERT_EQ(TryConnect(&conn), 0);
  ASSERT_OK_AND_ASSIGN(uint64_t veth, VethBytesWhileSending(conn.get(), 256 << 10));
  EXPECT_GE(veth, 256u << 10) << "still short-circuited";
}

TEST_F(KubeTest, AWatchThatExpiresInTheMiddleOfAChangeLosesNothing) {
  ASSERT_OK(ConnectGives(0));
  ASSERT_OK_AND_ASSIGN(nlohmann::json before, node_->AgentStatus());
  // Every watch is told 410 while the grant is being removed.
  ASSERT_OK(server_api_->Fault({{"expire_watches", true}}).status());
  ASSERT_OK(server_api_->Delete("access.smi-spec.io/v1alpha3", "TrafficTarget", "demo",
                                "client-to-server"));
  ASSERT_OK(ConnectGives(EPERM));
  // A second expiry with nothing changed: the relist rewrites no map entry.
  ASSERT_OK(Eventually("the deletion applied everywhere", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
    if (st["policy"]["traffic_targets"] != 0) return absl::UnavailableError(st.dump());
    return absl::OkStatus();
  }));
  ASSERT_OK_AND_ASSIGN(nlohmann::json mid, node_->AgentStatus());
  const uint64_t generation = mid["generation"].get<uint64_t>();
  ASSERT_OK(server_api_->Fault({{"expire_watches", true}}).status());
  ASSERT_OK(server_api_->Apply(Route()).status());  // same content, new resourceVersion
  ASSERT_OK(Eventually("the relist is applied", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
    if (st["generation"].get<uint64_t>() <= generation) return absl::UnavailableError(st.dump());
    return absl::OkStatus();
  }));
  // No map writer saw a difference: endpoints, policy, services wrote and
  // deleted nothing since before the relist.
  ASSERT_OK_AND_ASSIGN(nlohmann::json after, node_->AgentStatus());
  for (const char* part : {"", "policy", "services"}) {
    const nlohmann::json& a = *part ? after[part]["last_apply"] : after["last_apply"];
    const nlohmann::json& m = *part ? mid[part]["last_apply"] : mid["last_apply"];
    EXPECT_EQ(a["written_total"], m["written_total"]) << part << ": " << after.dump();
    EXPECT_EQ(a["deleted_total"], m["deleted_total"]) << part << ": " << after.dump();
  }
  EXPECT_EQ(TryConnect(), EPERM);
  (void)before;
}

TEST_F(KubeTest, AnAgentRestartedWhileTheClusterChangesCatchesUp) {
  lib::UniqueFd conn;
  ASSERT_EQ(TryConnect(&conn), 0);
  ASSERT_OK(node_->StopAgent(SIGTERM));
  // While the agent is down, the grant goes and a pod comes.
  ASSERT_OK(server_api_->Delete("access.smi-spec.io/v1alpha3", "TrafficTarget", "demo",
                                "client-to-server"));
  ASSERT_OK_AND_ASSIGN(
      TestPod * late,
      node_->AddPod({.name = "late", .namespace_ = "demo", .service_account = "late"}));
  // The established connection kept working throughout (the data path
  // stays in the kernel).
  ASSERT_OK(WriteAll(conn.get(), "ping"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(accepted_.get(), 4));
  EXPECT_EQ(got, "ping");
  ASSERT_OK(node_->StartAgent({"--mode=enforce"}));
  ASSERT_OK(node_->WaitMeshed());
  ASSERT_OK(ConnectGives(EPERM));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, node_->AgentStatus());
  bool late_meshed = false;
  for (const auto& p : st["local_pods"])
    late_meshed |= p["pod"] == "demo/" + late->name && p["problem"] == "";
  EXPECT_TRUE(late_meshed) << st.dump();
  EXPECT_EQ(st["source"]["source"], "kube");
  EXPECT_EQ(st["source"]["synced"], true);
  // What `shuntctl status` (and `kubectl shunt status`) shows of it.
  ASSERT_OK_AND_ASSIGN(std::string text,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                                       node_->api_socket(), " status")));
  EXPECT_NE(text.find(absl::StrCat("Source:    kube, ", server_api_->url())), std::string::npos)
      << text;
  EXPECT_NE(text.find("pods on this node"), std::string::npos) << text;
  EXPECT_NE(text.find("watching"), std::string::npos) << text;
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// Two nodes, each agent reading the one API server: n1's on 127.0.0.1 in
// its own namespace, n2's across the link between the nodes, verifying the
// server's certificate by name (tls-server-name: localhost).
class KubeTwoNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(n1_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(n2_, TestNode::Create("n2"));
    ASSERT_OK(TestNode::Link(*n1_, *n2_));
    ASSERT_OK_AND_ASSIGN(
        api_, FakeApiServer::Start({"--listen", "0.0.0.0"}, "/run/netns/" + n1_->node_netns()));
    const std::string port = api_->url().substr(api_->url().rfind(':') + 1);
    const std::string remote =
        api_->WriteKubeconfig("kubeconfig-n2", "ca.crt",
                              absl::StrCat("https://", n1_->link_ip(), ":", port), "localhost");
    n1_->UseApiServer(api_.get());
    n2_->UseApiServer(api_.get(), remote);
    ASSERT_OK_AND_ASSIGN(
        client_,
        n1_->AddPod({.name = "client", .namespace_ = "demo", .service_account = "client"}));
    ASSERT_OK_AND_ASSIGN(
        server_,
        n2_->AddPod({.name = "server", .namespace_ = "demo", .service_account = "server"}));
    ASSERT_OK(n1_->StartAgent());
    ASSERT_OK(n2_->StartAgent());
    ASSERT_OK(n1_->WaitMeshed());
    ASSERT_OK(n2_->WaitMeshed());
  }
  void TearDown() override {
    if (HasFailure() && n1_) std::fprintf(stderr, "--- n1 ---\n%s\n", n1_->AgentLog().c_str());
    if (HasFailure() && n2_) std::fprintf(stderr, "--- n2 ---\n%s\n", n2_->AgentLog().c_str());
    n1_.reset();
    n2_.reset();
    api_.reset();
  }
  static absl::StatusOr<std::vector<std::string>> LocalPods(TestNode& n) {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n.AgentStatus());
    std::vector<std::string> out;
    for (const auto& p : st["local_pods"])
      if (p["problem"] == "") out.push_back(p["pod"]);
    return out;
  }

  std::unique_ptr<FakeApiServer> api_;
  std::unique_ptr<TestNode> n1_, n2_;
  TestPod *client_ = nullptr, *server_ = nullptr;
};

TEST_F(KubeTwoNodeTest, APodRescheduledToAnotherNodeIsMeshedWhereItRuns) {
  // Each agent has only its own pod; n2's reached the server across nodes.
  EXPECT_EQ(*LocalPods(*n1_), std::vector<std::string>{"demo/client"});
  EXPECT_EQ(*LocalPods(*n2_), std::vector<std::string>{"demo/server"});
  ASSERT_OK_AND_ASSIGN(nlohmann::json n2_status, n2_->AgentStatus());
  EXPECT_NE(n2_status["source"]["server"].get<std::string>().find(n1_->link_ip()),
            std::string::npos);

  // The server pod is rescheduled: deleted on n2, created again on n1 (a
  // new sandbox, uid and IP, the same name), as a controller does it.
  ASSERT_OK(api_->Delete("v1", "Pod", "demo", "server"));
  ASSERT_OK_AND_ASSIGN(
      TestPod * moved,
      n1_->AddPod({.name = "server", .namespace_ = "demo", .service_account = "server"}));
  ASSERT_OK(Eventually("the pod meshed on n1 and gone from n2", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(auto on1, LocalPods(*n1_));
    SHUNT_ASSIGN_OR_RETURN(auto on2, LocalPods(*n2_));
    if (on1.size() == 2 && on2.empty()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(on1.size(), " on n1, ", on2.size(), " on n2"));
  }));
  // Client to the moved pod now goes socket to socket on n1.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, n1_->PodSocket(*moved, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7700));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), moved->ip, 7700));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(l.get()));
  ASSERT_OK(WarmUp(c.get(), s.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, n1_->VethBytes(*client_));
  const std::string payload = RandomBytes(256 << 10, 11);
  ASSERT_OK(WriteAll(c.get(), payload));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), payload.size()));
  EXPECT_EQ(Fnv1a(got), Fnv1a(payload));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, n1_->VethBytes(*client_));
  EXPECT_LT(veth_after - veth_before, 4096u) << "not short-circuited";
}

}  // namespace
}  // namespace shunt::e2e
