// Two simulated nodes on one kernel, each with its own agent, cgroup
// subtree and pins: each agent short-circuits only its own node's pods, and
// traffic between nodes takes the normal path.
#include <sys/socket.h>

#include <thread>

#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(n1_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(n2_, TestNode::Create("n2"));
    ASSERT_OK_AND_ASSIGN(a1_, n1_->AddPod({.name = "a1", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(b1_, n1_->AddPod({.name = "b1", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(a2_, n2_->AddPod({.name = "a2", .namespace_ = "demo"}));
    ASSERT_OK_AND_ASSIGN(b2_, n2_->AddPod({.name = "b2", .namespace_ = "demo"}));
    ASSERT_OK(TestNode::Link(*n1_, *n2_));
    // Each node's source sees the whole cluster, as the kube source will.
    ASSERT_OK(n1_->WriteManifests({n2_.get()}));
    ASSERT_OK(n2_->WriteManifests({n1_.get()}));
    ASSERT_OK(n1_->StartAgent());
    ASSERT_OK(n2_->StartAgent());
    ASSERT_OK(n1_->WaitMeshed());
    ASSERT_OK(n2_->WaitMeshed());
  }
  void TearDown() override {
    if (HasFailure() && n1_)
      std::fprintf(stderr, "--- n1 agent ---\n%s\n", n1_->AgentLog().c_str());
    if (HasFailure() && n2_)
      std::fprintf(stderr, "--- n2 agent ---\n%s\n", n2_->AgentLog().c_str());
    n1_.reset();
    n2_.reset();
  }

  // Opens a connection from `from` (on `fn`) to `to` (on `tn`) and moves a
  // request and a reply; returns after checking the bytes.
  void Exchange(TestNode& fn, const TestPod& from, TestNode& tn, const TestPod& to, uint16_t port) {
    ASSERT_OK_AND_ASSIGN(lib::UniqueFd l, tn.PodSocket(to, SOCK_STREAM));
    ASSERT_OK(ListenOn(l.get(), port));
    ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, fn.PodSocket(from, SOCK_STREAM));
    ASSERT_OK(ConnectTo(c.get(), to.ip, port));
    ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, AcceptOne(l.get()));
    ASSERT_OK(WarmUp(c.get(), s.get()));  // its bytes take TCP: not counted below
    const std::string req = RandomBytes(100000, port);
    std::thread w([&] { EXPECT_OK(WriteAll(c.get(), req)); });
    ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), req.size()));
    w.join();
    EXPECT_EQ(Fnv1a(got), Fnv1a(req));
    ASSERT_OK(WriteAll(s.get(), "done"));
    ASSERT_OK_AND_ASSIGN(std::string done, ReadExactly(c.get(), 4));
    EXPECT_EQ(done, "done");
  }

  uint64_t Ctr(TestNode& n, int idx) {
    auto c = n.Counters();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? (*c)[idx] : 0;
  }

  std::unique_ptr<TestNode> n1_, n2_;
  TestPod *a1_ = nullptr, *b1_ = nullptr, *a2_ = nullptr, *b2_ = nullptr;
};

TEST_F(MultiNodeTest, EachAgentShortCircuitsOnlyItsOwnNode) {
  Exchange(*n1_, *a1_, *n1_, *b1_, 7601);
  EXPECT_EQ(Ctr(*n1_, SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  EXPECT_EQ(Ctr(*n2_, SHUNT_CTR_SOCK_SHORT_CIRCUITED), 0u);
  Exchange(*n2_, *a2_, *n2_, *b2_, 7602);
  EXPECT_EQ(Ctr(*n1_, SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  EXPECT_EQ(Ctr(*n2_, SHUNT_CTR_SOCK_SHORT_CIRCUITED), 2u);
  EXPECT_EQ(Ctr(*n1_, SHUNT_CTR_BYTES_REDIRECTED), 100004u);
  EXPECT_EQ(Ctr(*n2_, SHUNT_CTR_BYTES_REDIRECTED), 100004u);
}

TEST_F(MultiNodeTest, TrafficBetweenNodesTakesTheNormalPath) {
  ASSERT_OK_AND_ASSIGN(uint64_t veth_before, n1_->VethBytes(*a1_));
  Exchange(*n1_, *a1_, *n2_, *b2_, 7603);
  Exchange(*n2_, *a2_, *n1_, *b1_, 7604);
  for (TestNode* n : {n1_.get(), n2_.get()}) {
    EXPECT_EQ(Ctr(*n, SHUNT_CTR_SOCK_SHORT_CIRCUITED), 0u);
    EXPECT_EQ(Ctr(*n, SHUNT_CTR_MSG_REDIRECTED), 0u);
    // The local end saw a remote pod as its peer and stayed out of the sockhash.
    EXPECT_GE(Ctr(*n, SHUNT_CTR_SOCK_SKIP_PEER_REMOTE), 2u);
  }
  ASSERT_OK_AND_ASSIGN(uint64_t veth_after, n1_->VethBytes(*a1_));
  EXPECT_GE(veth_after - veth_before, 100000u);
}

TEST_F(MultiNodeTest, RemotePodsAreInTheIpcacheWithoutTheLocalFlag) {
  ASSERT_OK_AND_ASSIGN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(n1_->bpffs()), true));
  ASSERT_OK_AND_ASSIGN(auto entries, maps->ipcache().Entries());
  ASSERT_EQ(entries.size(), 4u);
  int local = 0;
  for (const auto& [ip, e] : entries) local += (e.flags & SHUNT_IPC_F_LOCAL) != 0;
  EXPECT_EQ(local, 2);
  ASSERT_OK_AND_ASSIGN(auto eps, maps->endpoints().Entries());
  EXPECT_EQ(eps.size(), 2u);
}

}  // namespace
}  // namespace shunt::e2e
