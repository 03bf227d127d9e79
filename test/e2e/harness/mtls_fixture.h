// Two simulated nodes whose agents run with --mtls=strict (each with its own
// shunt-proxy on the node's link address), a client pod on node 1, a pod on
// node 1 that is no one's server, and a server pod on node 2 (docs/mtls.md).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/sim.h"
#include "test/e2e/harness/sock_util.h"
#include "test/e2e/harness/status_matchers.h"

namespace shunt::e2e {

class MtlsMeshTest : public ::testing::Test {
 protected:
  // Extra agent flags per node (the policy mode, ...); set before SetUp.
  std::vector<std::string> n1_flags_, n2_flags_;
  // Objects both nodes' sources hold besides the pods (TrafficTargets, ...).
  std::string policy_yaml_;
  // Dual-stack pods, and each proxy on the node's IPv6 link address too.
  bool dual_stack_ = false;

  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    SweepStale();
    ASSERT_OK_AND_ASSIGN(n1_, TestNode::Create("n1"));
    ASSERT_OK_AND_ASSIGN(n2_, TestNode::Create("n2"));
    ASSERT_OK_AND_ASSIGN(client_, n1_->AddPod({.name = "client",
                                               .namespace_ = "demo",
                                               .service_account = "client",
                                               .ipv6 = dual_stack_}));
    ASSERT_OK_AND_ASSIGN(local_, n1_->AddPod({.name = "local",
                                              .namespace_ = "demo",
                                              .service_account = "local",
                                              .ipv6 = dual_stack_}));
    ASSERT_OK_AND_ASSIGN(server_, n2_->AddPod({.name = "server",
                                               .namespace_ = "demo",
                                               .service_account = "server",
                                               .ipv6 = dual_stack_}));
    ASSERT_OK(TestNode::Link(*n1_, *n2_));
    ASSERT_OK(n1_->WriteManifests({n2_.get()}));
    ASSERT_OK(n2_->WriteManifests({n1_.get()}));
    if (!policy_yaml_.empty()) {
      ASSERT_OK(n1_->WriteConfigFile("policy.yaml", policy_yaml_));
      ASSERT_OK(n2_->WriteConfigFile("policy.yaml", policy_yaml_));
    }
    ca_dir_ = n1_->work_dir() + "/ca";
    ASSERT_OK(Sh(absl::StrCat(SHUNTCTL_BIN, " ca init --dir ", ca_dir_)).status());
    for (TestNode* n : {n1_.get(), n2_.get()}) ASSERT_OK(StartAgent(*n));
  }
  // Starts (or starts again) the node's agent with its flags, and waits
  // until its pods are meshed and its proxy listens.
  absl::Status StartAgent(TestNode& n) {
    std::vector<std::string> flags = {
        "--mtls=strict", "--ca-dir=" + ca_dir_,
        "--node-ip=" + n.link_ip() + (dual_stack_ ? "," + n.link_ip6() : "")};
    const auto& extra = &n == n1_.get() ? n1_flags_ : n2_flags_;
    flags.insert(flags.end(), extra.begin(), extra.end());
    SHUNT_RETURN_IF_ERROR(n.StartAgent(flags));
    SHUNT_RETURN_IF_ERROR(n.WaitMeshed());
    // The last --mtls wins: a node may run without (a meshless peer).
    if (std::find(extra.begin(), extra.end(), "--mtls=off") != extra.end()) return absl::OkStatus();
    return WaitProxyReady(n);
  }
  static pid_t ProxyPid(TestNode& n) {
    auto st = n.AgentStatus();
    return st.ok() ? (*st)["mtls"]["proxy"]["pid"].get<pid_t>() : -1;
  }
  void TearDown() override {
    if (HasFailure()) {
      for (TestNode* n : {n1_.get(), n2_.get()}) {
        if (!n) continue;
        auto st = n->AgentStatus();
        std::fprintf(stderr, "--- %s agent ---\n%s\n--- its mtls status ---\n%s\n",
                     n->name().c_str(), n->AgentLog().c_str(),
                     st.ok() ? (*st)["mtls"].dump(1).c_str() : "(none)");
      }
    }
    n1_.reset();
    n2_.reset();
  }

  static absl::Status WaitProxyReady(TestNode& n) {
    return Eventually(absl::StrCat(n.name(), "'s proxy listens"), [&]() -> absl::Status {
      auto st = n.AgentStatus();
      if (!st.ok()) return st.status();
      if ((*st)["mtls"]["proxy"]["ready"] == true && (*st)["mtls"]["handoff"] == true)
        return absl::OkStatus();
      return absl::UnavailableError((*st)["mtls"].dump());
    });
  }

  // The proxy's counter `name`, as its agent last heard it (each second).
  static uint64_t ProxyCounter(TestNode& n, const std::string& name) {
    auto st = n.AgentStatus();
    if (!st.ok()) return 0;
    const auto& c = (*st)["mtls"]["proxy"]["report"]["counters"];
    return c.contains(name) ? c[name].get<uint64_t>() : 0;
  }
  static uint64_t Refusals(TestNode& n, const std::string& reason) {
    auto st = n.AgentStatus();
    if (!st.ok()) return 0;
    const auto& r = (*st)["mtls"]["proxy"]["report"]["refusals"];
    return r.contains(reason) ? r[reason].get<uint64_t>() : 0;
  }
  static absl::Status WaitCounter(TestNode& n, const std::string& name, uint64_t at_least) {
    return Eventually(absl::StrCat(n.name(), " proxy ", name, " >= ", at_least),
                      [&]() -> absl::Status {
                        const uint64_t v = ProxyCounter(n, name);
                        if (v >= at_least) return absl::OkStatus();
                        return absl::UnavailableError(absl::StrCat(name, " = ", v));
                      });
  }
  static absl::Status WaitRefusal(TestNode& n, const std::string& reason, uint64_t at_least = 1) {
    return Eventually(absl::StrCat(n.name(), " proxy refused ", reason), [&]() -> absl::Status {
      const uint64_t v = Refusals(n, reason);
      if (v >= at_least) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat(reason, " = ", v));
    });
  }

  // Runs argv in `pod` of `n` to its end (a real client: curl, h2load);
  // its output, or an error with the output when it failed or ran over.
  absl::StatusOr<std::string> RunInPod(TestNode& n, const TestPod& pod,
                                       const std::vector<std::string>& argv,
                                       int timeout_ms = 30000) {
    const std::string log = absl::StrCat(n.work_dir(), "/run-", runs_++, ".log");
    SHUNT_ASSIGN_OR_RETURN(pid_t pid, n.Spawn(pod, argv, log));
    absl::StatusOr<int> st = WaitExit(pid, timeout_ms);
    if (!st.ok()) KillAndReap(pid);
    const std::string out = Slurp(log);
    if (!st.ok() || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0)
      return absl::InternalError(absl::StrCat(argv[0], " failed: ", out));
    return out;
  }

  struct Pair {
    lib::UniqueFd listener, client, server;
  };
  // client -> server:port across the nodes; both ends made in their pods.
  absl::StatusOr<Pair> CrossNode(uint16_t port) {
    Pair p;
    SHUNT_ASSIGN_OR_RETURN(p.listener, n2_->PodSocket(*server_, SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(ListenOn(p.listener.get(), port));
    SHUNT_ASSIGN_OR_RETURN(p.client, n1_->PodSocket(*client_, SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(ConnectTo(p.client.get(), server_->ip, port));
    SHUNT_ASSIGN_OR_RETURN(p.server, AcceptOne(p.listener.get()));
    return p;
  }

  std::unique_ptr<TestNode> n1_, n2_;
  TestPod *client_ = nullptr, *local_ = nullptr, *server_ = nullptr;
  std::string ca_dir_;
  int runs_ = 0;
};

}  // namespace shunt::e2e
