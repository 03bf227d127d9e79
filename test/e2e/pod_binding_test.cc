// A local pod is bound to its network namespace by its kubelet cgroup, so
// nothing a pod does to its own interfaces changes who is meshed or which
// veth is guarded (issue 13 item 3; the attacks of issue 14 item 7).
#include <arpa/inet.h>

#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class PodBindingTest : public MeshTest {
 protected:
  // The local_pods entry of `pod` in the agent's status.
  absl::StatusOr<nlohmann::json> PodStatus(const TestPod& pod) {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
    for (const auto& p : st["local_pods"])
      if (p["pod"] == pod.namespace_ + "/" + pod.name) return p;
    return absl::NotFoundError(st.dump());
  }
  // Makes the agent look at every sandbox again: a config change (an
  // empty file) is applied, and with it a full probe; then a restarted
  // agent, which has only the pins to remember the guards by.
  absl::Status Rescanned() { return node_->ApplyConfigFile("nudge.yaml", "# nothing\n"); }
  absl::Status Restarted() {
    SHUNT_RETURN_IF_ERROR(node_->StopAgent(SIGTERM));
    SHUNT_RETURN_IF_ERROR(node_->StartAgent());
    return Eventually("the restarted agent has applied", [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, node_->AgentStatus());
      if (st["ready"] == true && st["reconciles"].get<uint64_t>() > 0) return absl::OkStatus();
      return absl::UnavailableError(st.dump());
    });
  }
};

TEST_F(PodBindingTest, APodTakingItsNeighboursIpUnmeshesNobody) {
  ASSERT_OK_AND_ASSIGN(
      TestPod * third,
      node_->AddPod({.name = "third", .namespace_ = "demo", .service_account = "third"}));
  StartMesh();
  ASSERT_OK_AND_ASSIGN(nlohmann::json before, PodStatus(*server_));
  // The client (root in its namespace, CAP_NET_ADMIN) adds the server's IP.
  ASSERT_OK(Sh(absl::StrCat("ip -n ", client_->netns, " addr add ", server_->ip, "/32 dev eth0"))
                .status());
  ASSERT_OK(node_->StopAgent(SIGTERM));  // a fresh agent looks at everything anew
  ASSERT_OK(node_->StartAgent());
  ASSERT_OK(node_->WaitMeshed());
  ASSERT_OK_AND_ASSIGN(nlohmann::json after, PodStatus(*server_));
  EXPECT_EQ(after["problem"], "");
  EXPECT_EQ(after["netns_cookie"], before["netns_cookie"]) << "the server's binding moved";
  // And a third pod's bytes still go socket to socket to the real server.
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*third, *server_, 7070));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, node_->VethBytes(*third));
  ASSERT_OK(WriteAll(c.client.get(), std::string(64 << 10, 'x')));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), 64 << 10));
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, node_->VethBytes(*third));
  EXPECT_LT(veth_after - veth_before, 4096u);
}

TEST_F(PodBindingTest, APodMovingItsIpToAnotherDeviceKeepsItsBindingAndGuard) {
  StartMesh();
  ASSERT_OK_AND_ASSIGN(nlohmann::json before, PodStatus(*client_));
  ASSERT_EQ(before["tc_guarded"], true) << before.dump();
  // The client moves its address from its veth to a device of its own (a
  // veth pair inside its namespace; this kernel has no dummy driver).
  const std::string& ns = client_->netns;
  ASSERT_OK(
      Sh(absl::StrCat("ip -n ", ns, " link add fake0 type veth peer name fake1 && ip -n ", ns,
                      " link set fake0 up && ip -n ", ns, " addr del ", client_->ip,
                      "/32 dev eth0 && ip -n ", ns, " addr add ", client_->ip, "/32 dev fake0"))
          .status());
  ASSERT_OK(Rescanned());
  ASSERT_OK_AND_ASSIGN(nlohmann::json after, PodStatus(*client_));
  EXPECT_EQ(after["problem"], "") << after.dump();
  EXPECT_EQ(after["netns_cookie"], before["netns_cookie"]) << after.dump();
  EXPECT_EQ(after["tc_guarded"], true) << after.dump();
  EXPECT_EQ(after["host_ifindexes"], before["host_ifindexes"]) << after.dump();
}

TEST_F(PodBindingTest, APodMovingItsVethEndAwayKeepsTheGuardOnIt) {
  StartMesh();
  ASSERT_OK_AND_ASSIGN(nlohmann::json before, PodStatus(*client_));
  ASSERT_EQ(before["tc_guarded"], true) << before.dump();
  // The client moves its end of the veth into a namespace of its own: seen
  // from the node, the link's peer is no longer in the pod's namespace. The
  // guard must stay, or packets from there could carry any source.
  const std::string nested = client_->netns + "x";
  struct Cleanup {
    std::string ns;
    ~Cleanup() { (void)Sh("ip netns del " + ns); }
  } cleanup{nested};
  ASSERT_OK(Sh(absl::StrCat("ip netns add ", nested, " && ip -n ", client_->netns,
                            " link set eth0 netns ", nested))
                .status());
  ASSERT_OK(Rescanned());
  // Its namespace no longer holds its IP: it is not meshed any more, and
  // says why; but its veth stays guarded.
  ASSERT_OK_AND_ASSIGN(nlohmann::json after, PodStatus(*client_));
  EXPECT_NE(after["problem"].get<std::string>().find("does not hold status.podIP"),
            std::string::npos)
      << after.dump();
  EXPECT_EQ(after["tc_guarded"], true) << after.dump();
  EXPECT_EQ(after["host_ifindexes"], before["host_ifindexes"]) << after.dump();
  ASSERT_OK(Restarted());
  ASSERT_OK_AND_ASSIGN(nlohmann::json restarted, PodStatus(*client_));
  EXPECT_EQ(restarted["tc_guarded"], true) << restarted.dump();
  EXPECT_EQ(restarted["host_ifindexes"], before["host_ifindexes"]) << restarted.dump();
}

}  // namespace
}  // namespace shunt::e2e
