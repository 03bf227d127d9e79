// The data path outlives the agent: restarts and SIGKILL keep open
// connections flowing and short-circuited; uninstall removes every pin,
// link and cgroup attachment and nothing else.
#include <bpf/bpf.h>
#include <signal.h>
#include <sys/socket.h>

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/fs_checks.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class LifecycleTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh();
  }

  // A connection after its first exchange (WarmUp): from then on the
  // short-circuit carries it.
  absl::StatusOr<Conn> WarmConnect(uint16_t port) {
    auto c = Connect(*client_, *server_, port);
    if (!c.ok()) return c.status();
    if (auto s = WarmUp(c->client.get(), c->server.get()); !s.ok()) return s;
    return c;
  }

  // One request/response over the connection; true if it went socket to socket.
  void ExchangeAndExpectRedirected(Conn& c, const std::string& tag, bool redirected = true) {
    const uint64_t before = Counter(SHUNT_CTR_MSG_REDIRECTED);
    ASSERT_OK(WriteAll(c.client.get(), "ping-" + tag));
    ASSERT_OK_AND_ASSIGN(std::string req, ReadExactly(c.server.get(), 5 + tag.size()));
    EXPECT_EQ(req, "ping-" + tag);
    ASSERT_OK(WriteAll(c.server.get(), "pong-" + tag));
    ASSERT_OK_AND_ASSIGN(std::string resp, ReadExactly(c.client.get(), 5 + tag.size()));
    EXPECT_EQ(resp, "pong-" + tag);
    if (redirected) {
      EXPECT_EQ(Counter(SHUNT_CTR_MSG_REDIRECTED) - before, 2u) << tag;
    }
  }

  // The programs the node's links attach, by ID: name.
  absl::StatusOr<std::map<uint32_t, std::string>> LinkedProgs() {
    std::map<uint32_t, std::string> progs;
    for (const auto& e : std::filesystem::recursive_directory_iterator(node_->bpffs() + "/links")) {
      if (!e.is_regular_file()) continue;
      SHUNT_ASSIGN_OR_RETURN(auto fd, lib::OpenLinkPin(e.path().string()));
      SHUNT_ASSIGN_OR_RETURN(lib::LinkFacts link, lib::DescribeLink(fd.get()));
      progs[link.prog_id] = link.prog_name;
    }
    return progs;
  }
};

TEST_F(LifecycleTest, SigtermRestartAndSigkillKeepAnOpenConnectionShortCircuited) {
  ASSERT_OK_AND_ASSIGN(Conn c, WarmConnect(7201));
  ExchangeAndExpectRedirected(c, "before");

  ASSERT_OK(node_->StopAgent(SIGTERM));
  ExchangeAndExpectRedirected(c, "agent-stopped");
  // New connections are short-circuited too: programs stay attached.
  ASSERT_OK_AND_ASSIGN(Conn c2, WarmConnect(7202));
  ExchangeAndExpectRedirected(c2, "new-while-down");

  ASSERT_OK(node_->StartAgent());
  ASSERT_OK(node_->WaitMeshed());
  ExchangeAndExpectRedirected(c, "restarted");
  ASSERT_OK_AND_ASSIGN(auto st, node_->AgentStatus());
  EXPECT_EQ(st["last_apply"]["errors"].size(), 0u);

  ASSERT_OK(node_->StopAgent(SIGKILL));
  ExchangeAndExpectRedirected(c, "killed");
  ExchangeAndExpectRedirected(c2, "killed-2");

  ASSERT_OK(node_->StartAgent());
  ASSERT_OK(node_->WaitMeshed());
  ExchangeAndExpectRedirected(c, "after-kill-restart");
  EXPECT_NE(node_->AgentLog().find("programs replaced in existing links"), std::string::npos);
  ASSERT_OK_AND_ASSIGN(uint64_t entries, node_->SockhashEntries());
  EXPECT_EQ(entries, 4u);
}

TEST_F(LifecycleTest, RestartKeepsIdentitiesStable) {
  ASSERT_OK_AND_ASSIGN(auto maps, lib::PinnedMaps::Open(lib::PinLayout(node_->bpffs()), true));
  ASSERT_OK_AND_ASSIGN(auto before, maps->endpoints().Entries());
  ASSERT_OK(node_->StopAgent(SIGKILL));
  ASSERT_OK(node_->StartAgent());
  ASSERT_OK(node_->WaitMeshed());
  ASSERT_OK_AND_ASSIGN(auto after, maps->endpoints().Entries());
  ASSERT_EQ(before.size(), 2u);
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].first, before[i].first);
    EXPECT_EQ(after[i].second.identity, before[i].second.identity);
  }
}

// An upgrade from a version whose maps had another layout (renamed with a
// new _vN) leaves nothing of the old layout pinned: the restarted agent
// removes it, and so does uninstall when no agent ran since.
TEST_F(LifecycleTest, MapsOfAnEarlierLayoutAreRemovedOnUpgradeAndUninstall) {
  const std::string old_flows = node_->bpffs() + "/shunt_flows_v1";
  ASSERT_OK(node_->StopAgent(SIGTERM));
  ASSERT_OK(Sh("bpftool map create " + old_flows +
               " type lru_hash key 16 value 904 entries 16 name shunt_flows_v1"));
  ASSERT_OK(node_->StartAgent());
  ASSERT_OK(node_->WaitMeshed());
  EXPECT_FALSE(std::filesystem::exists(old_flows))
      << "the restarted agent left the old layout pinned";
  ASSERT_OK_AND_ASSIGN(Conn c, WarmConnect(7204));
  ExchangeAndExpectRedirected(c, "upgraded");

  ASSERT_OK(node_->StopAgent(SIGTERM));
  const std::string old_services = node_->bpffs() + "/shunt_services_v1";
  ASSERT_OK(Sh("bpftool map create " + old_services +
               " type hash key 8 value 16 entries 16 name shunt_services_v1 flags 1"));
  ASSERT_OK_AND_ASSIGN(std::string out,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " uninstall")));
  EXPECT_NE(out.find("map shunt_services_v1 (an earlier layout)"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(old_services));
  EXPECT_EQ(out.find("left alone"), std::string::npos) << out;
}

TEST_F(LifecycleTest, UninstallRemovesPinsLinksAndAttachmentsAndLeavesOtherPinsAlone) {
  ASSERT_OK_AND_ASSIGN(Conn c, WarmConnect(7203));
  ExchangeAndExpectRedirected(c, "before");
  // Someone else's pin in the same directory must survive.
  const std::string foreign = node_->bpffs() + "/not-ours";
  ASSERT_OK(
      Sh("bpftool map create " + foreign + " type array key 4 value 4 entries 1 name notours"));
  // Our programs, by ID: other agents on the machine (other test runs)
  // load programs of the same names.
  ASSERT_OK_AND_ASSIGN(auto progs, LinkedProgs());
  std::set<std::string> names;
  for (const auto& [id, name] : progs) names.insert(name);
  EXPECT_EQ(names, (std::set<std::string>{
                       "shunt_sk_msg", "shunt_sockops", "shunt_connect4", "shunt_sendmsg4",
                       "shunt_getpeerna", "shunt_recvmsg4", "shunt_connect6", "shunt_recvmsg6",
                       "shunt_sendmsg6", "shunt_tc_from_p", "shunt_tc_to_pod", "shunt_setsockop",
                       "shunt_getsockop", "shunt_watch_rec", "shunt_watch_sen"}));
  ASSERT_OK(node_->StopAgent(SIGTERM));

  ASSERT_OK_AND_ASSIGN(std::string out,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " uninstall")));
  EXPECT_NE(out.find("left alone (not ours): " + foreign), std::string::npos) << out;
  ASSERT_OK_AND_ASSIGN(std::string cg, Sh("bpftool cgroup show " + node_->cgroup_root()));
  for (const char* hook : {"sock_ops", "connect4", "sendmsg4", "getpeername4", "recvmsg4",
                           "connect6", "getpeername6", "recvmsg6", "setsockopt", "getsockopt"})
    EXPECT_EQ(cg.find(hook), std::string::npos) << cg;
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(node_->bpffs()))
    left.push_back(e.path());
  EXPECT_EQ(left, std::vector<std::string>{foreign});
  std::filesystem::remove(foreign);

  // Sockets already in the sockhash keep their sk_msg program (the kernel
  // holds it for them), so an open connection carries on without a hitch...
  ASSERT_OK(WriteAll(c.client.get(), "after"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(c.server.get(), 5));
  EXPECT_EQ(got, "after");
  // ...and once it closes, nothing of ours stays loaded in the kernel.
  c = Conn();
  // sk_msg goes with the last socket's psock, which the kernel frees later,
  // from a work queue.
  EXPECT_OK(Eventually("the kernel unloads all our programs", [&]() -> absl::Status {
    std::vector<std::string> loaded;
    for (const auto& [id, name] : progs) {
      lib::UniqueFd fd(bpf_prog_get_fd_by_id(id));
      if (fd.valid() || errno != ENOENT) loaded.push_back(absl::StrCat(name, " (id ", id, ")"));
    }
    if (loaded.empty()) return absl::OkStatus();
    return absl::FailedPreconditionError("still loaded (leaked?): " + absl::StrJoin(loaded, ", "));
  }));
  // A second uninstall has nothing to do and says so.
  ASSERT_OK_AND_ASSIGN(out,
                       Sh(absl::StrCat(SHUNT_AGENT_BIN, " --uninstall --bpffs=", node_->bpffs())));
  EXPECT_NE(out.find("nothing to uninstall"), std::string::npos) << out;
}

}  // namespace
}  // namespace shunt::e2e
