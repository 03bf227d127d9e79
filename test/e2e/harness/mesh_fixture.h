// A node with an agent and two meshed pods, client and server, ready for
// traffic. Tests that need more pods add them before StartMesh().
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "test/e2e/harness/sim.h"
#include "test/e2e/harness/sock_util.h"
#include "test/e2e/harness/status_matchers.h"

namespace shunt::e2e {

class MeshTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(node_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(
        client_,
        node_->AddPod({.name = "client", .namespace_ = "demo", .service_account = "client"}));
    ASSERT_OK_AND_ASSIGN(
        server_,
        node_->AddPod({.name = "server", .namespace_ = "demo", .service_account = "server"}));
  }

  void TearDown() override {
    if (HasFailure() && node_)
      std::fprintf(stderr, "--- agent log ---\n%s\n", node_->AgentLog().c_str());
    node_.reset();
  }

  // Starts the agent (with `flags`) and waits until every pod is meshed.
  void StartMesh(const std::vector<std::string>& flags = {}) {
    ASSERT_OK(node_->StartAgent(flags));
    ASSERT_OK(node_->WaitMeshed());
  }

  struct Conn {
    lib::UniqueFd client, server, listener;
  };

  // A TCP connection from `from` to `to`:port, both ends created in their pods.
  absl::StatusOr<Conn> Connect(const TestPod& from, const TestPod& to, uint16_t port) {
    Conn c;
    auto l = node_->PodSocket(to, SOCK_STREAM);
    if (!l.ok()) return l.status();
    c.listener = std::move(*l);
    if (auto s = ListenOn(c.listener.get(), port); !s.ok()) return s;
    auto cl = node_->PodSocket(from, SOCK_STREAM);
    if (!cl.ok()) return cl.status();
    c.client = std::move(*cl);
    if (auto s = ConnectTo(c.client.get(), to.ip, port); !s.ok()) return s;
    auto sv = AcceptOne(c.listener.get());
    if (!sv.ok()) return sv.status();
    c.server = std::move(*sv);
    return c;
  }

  uint64_t Counter(int idx) {
    auto c = node_->Counters();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? (*c)[idx] : 0;
  }

  std::unique_ptr<TestNode> node_;
  TestPod* client_ = nullptr;
  TestPod* server_ = nullptr;
};

}  // namespace shunt::e2e
