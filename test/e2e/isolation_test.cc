// Only pod-to-pod traffic between pods the agent knows is short-circuited;
// host processes, unknown pods and remote addresses take the normal path,
// untouched, and still work.
#include <sys/socket.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class IsolationTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK_AND_ASSIGN(stranger_, node_->AddPod({.name = "stranger", .in_config = false}));
    StartMesh();
  }

  // Sends a request and a reply over a connected pair and checks the bytes.
  void RoundTrip(int client_fd, int server_fd) {
    const std::string req = RandomBytes(256 * 1024, 11), resp = RandomBytes(256 * 1024, 12);
    std::thread t([&] { EXPECT_OK(WriteAll(client_fd, req)); });
    ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(server_fd, req.size()));
    t.join();
    EXPECT_EQ(Fnv1a(got), Fnv1a(req));
    std::thread t2([&] { EXPECT_OK(WriteAll(server_fd, resp)); });
    ASSERT_OK_AND_ASSIGN(std::string back, ReadExactly(client_fd, resp.size()));
    t2.join();
    EXPECT_EQ(Fnv1a(back), Fnv1a(resp));
  }

  void ExpectUntouched(uint64_t veth_before, const TestPod& pod) {
    ASSERT_OK_AND_ASSIGN(uint64_t entries, node_->SockhashEntries());
    EXPECT_EQ(entries, 0u);
    EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), 0u);
    EXPECT_EQ(Counter(SHUNT_CTR_MSG_REDIRECTED), 0u);
    ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(pod));
    EXPECT_GE(veth_after - veth_before, 512u * 1024) << "bytes did not take the TCP/IP path";
  }

  TestPod* stranger_ = nullptr;
};

TEST_F(IsolationTest, HostProcessToPodIsUntouched) {
  ASSERT_OK_AND_ASSIGN(uint64_t veth, node_->VethBytes(*server_));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, node_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7301));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd host, node_->NodeSocket(SOCK_STREAM));
  ASSERT_OK(ConnectTo(host.get(), server_->ip, 7301));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd srv, AcceptOne(l.get()));
  RoundTrip(host.get(), srv.get());
  ExpectUntouched(veth, *server_);
  // The host end was seen and skipped because it is no pod.
  EXPECT_GE(Counter(SHUNT_CTR_SOCK_SKIP_NOT_POD), 1u);
}

TEST_F(IsolationTest, PodToUnknownPodIsUntouchedBothWays) {
  ASSERT_OK_AND_ASSIGN(uint64_t veth, node_->VethBytes(*stranger_));
  {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *stranger_, 7302));
    RoundTrip(c.client.get(), c.server.get());
  }
  {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*stranger_, *server_, 7303));
    RoundTrip(c.client.get(), c.server.get());
  }
  ExpectUntouched(veth, *stranger_);
  EXPECT_GE(Counter(SHUNT_CTR_SOCK_SKIP_PEER_REMOTE), 1u);  // client -> stranger
  EXPECT_GE(Counter(SHUNT_CTR_SOCK_SKIP_NOT_POD), 2u);      // the stranger's own ends
}

TEST_F(IsolationTest, LoopbackInsideAPodIsUntouched) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, node_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ListenOn(l.get(), 7304));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd cl, node_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(cl.get(), "127.0.0.1", 7304));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd srv, AcceptOne(l.get()));
  RoundTrip(cl.get(), srv.get());
  ASSERT_OK_AND_ASSIGN(uint64_t entries, node_->SockhashEntries());
  EXPECT_EQ(entries, 0u);
  EXPECT_GE(Counter(SHUNT_CTR_SOCK_SKIP_NOT_POD_IP), 2u);
}

TEST_F(IsolationTest, PodRemovedFromConfigStopsBeingShortCircuited) {
  {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7305));
    RoundTrip(c.client.get(), c.server.get());
  }
  EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  // Drop the server from the manifests: the agent withdraws it.
  server_->namespace_.clear();
  ASSERT_OK(node_->ApplyManifests());
  ASSERT_OK_AND_ASSIGN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(node_->bpffs()), true));
  ASSERT_OK_AND_ASSIGN(auto eps, maps->endpoints().Keys());
  EXPECT_EQ(eps.size(), 1u);
  {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7306));
    RoundTrip(c.client.get(), c.server.get());
  }
  EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u) << "the removed pod was short-circuited";
}

TEST_F(IsolationTest, RestartedPodIsFoundInItsNewNamespace) {
  ASSERT_OK_AND_ASSIGN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(node_->bpffs()), true));
  ASSERT_OK_AND_ASSIGN(auto before, maps->endpoints().Keys());
  ASSERT_OK(node_->RecreatePodNetwork(*server_));
  // The agent sees the namespace set change (no config change: it rescans
  // namespaces on its own) and follows the pod to its new netns cookie.
  ASSERT_OK(Eventually("the endpoints map follows the new namespace", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(auto after, maps->endpoints().Keys());
    if (after.size() == 2 && after != before) return absl::OkStatus();
    return absl::FailedPreconditionError(absl::StrCat(
        after.size(), " endpoints", after == before ? ", the old cookie still mapped" : ""));
  }));
  {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7307));
    ASSERT_OK(WarmUp(c.client.get(), c.server.get()));  // its bytes take TCP
    RoundTrip(c.client.get(), c.server.get());
  }
  EXPECT_EQ(Counter(SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  EXPECT_EQ(Counter(SHUNT_CTR_BYTES_REDIRECTED), 512u * 1024);
}

}  // namespace
}  // namespace shunt::e2e
