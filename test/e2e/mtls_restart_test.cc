// Faults of the mTLS path (docs/mtls.md "The agent and its proxy"): the
// proxy dying drops only the connections it carried and the agent starts
// it again; the agent restarting drops none (its proxy goes on serving, and
// drains once the next agent's proxy is up).
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "test/e2e/harness/mtls_fixture.h"

namespace shunt::e2e {
namespace {

class MtlsRestartTest : public MtlsMeshTest {
 protected:
  // One exchange each way on a connected pair.
  static absl::Status Exchange(int client, int server, const std::string& tag) {
    SHUNT_RETURN_IF_ERROR(WriteAll(client, "ping-" + tag));
    SHUNT_ASSIGN_OR_RETURN(std::string ping, ReadExactly(server, 5 + tag.size()));
    SHUNT_RETURN_IF_ERROR(WriteAll(server, "pong-" + tag));
    SHUNT_ASSIGN_OR_RETURN(std::string pong, ReadExactly(client, 5 + tag.size()));
    if (ping != "ping-" + tag || pong != "pong-" + tag)
      return absl::DataLossError(absl::StrCat("got ", ping, " / ", pong));
    return absl::OkStatus();
  }
};

TEST_F(MtlsRestartTest, AProxyThatDiesDropsOnlyItsConnectionsAndComesBack) {
  ASSERT_OK_AND_ASSIGN(Pair carried, CrossNode(7200));
  ASSERT_OK(Exchange(carried.client.get(), carried.server.get(), "a"));
  // A same-node pair, which the proxy never carried.
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd ll, n1_->PodSocket(*local_, SOCK_STREAM));
  ASSERT_OK(ListenOn(ll.get(), 7201));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd lc, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(lc.get(), local_->ip, 7201));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd ls, AcceptOne(ll.get()));
  ASSERT_OK(Exchange(lc.get(), ls.get(), "l"));

  const pid_t old = ProxyPid(*n1_);
  ASSERT_GT(old, 0);
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(old, SIGKILL), 0);
  // The carried connection ends; the same-node one does not notice.
  (void)ReadToEof(carried.client.get(), 5000);
  EXPECT_FALSE(Exchange(carried.client.get(), carried.server.get(), "b").ok());
  ASSERT_OK(Exchange(lc.get(), ls.get(), "m"));
  // A new connection works as soon as the new proxy listens.
  ASSERT_OK(Eventually(
      "a new cross-node connection works",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(Pair p, CrossNode(7202));
        return Exchange(p.client.get(), p.server.get(), "c");
      },
      10000));
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - killed)
                      .count();
  std::printf("new connections worked again %lld ms after the proxy was killed\n",
              static_cast<long long>(ms));
  EXPECT_NE(ProxyPid(*n1_), old);
  auto st = n1_->AgentStatus();
  ASSERT_OK(st.status());
  EXPECT_EQ((*st)["mtls"]["proxy"]["starts"], 2);
  EXPECT_EQ((*st)["mtls"]["proxy"]["last_exit"], "killed by signal 9");
}

TEST_F(MtlsRestartTest, AnAgentRestartDropsNoConnection) {
  ASSERT_OK_AND_ASSIGN(Pair carried, CrossNode(7300));
  ASSERT_OK(Exchange(carried.client.get(), carried.server.get(), "a"));
  const pid_t old = ProxyPid(*n1_);
  ASSERT_OK(n1_->StopAgent(SIGTERM));
  // The agent is gone; its proxy goes on carrying, and accepting.
  ASSERT_OK(Exchange(carried.client.get(), carried.server.get(), "b"));
  ASSERT_OK_AND_ASSIGN(Pair meanwhile, CrossNode(7301));
  ASSERT_OK(Exchange(meanwhile.client.get(), meanwhile.server.get(), "c"));

  ASSERT_OK(StartAgent(*n1_));
  EXPECT_NE(ProxyPid(*n1_), old);
  // The old proxy now drains: its connections still work ...
  ASSERT_OK(Exchange(carried.client.get(), carried.server.get(), "d"));
  ASSERT_OK(Exchange(meanwhile.client.get(), meanwhile.server.get(), "e"));
  // ... new ones go to the new proxy ...
  ASSERT_OK(Eventually("a new connection through the new proxy", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(Pair p, CrossNode(7302));
    SHUNT_RETURN_IF_ERROR(Exchange(p.client.get(), p.server.get(), "f"));
    return WaitCounter(*n1_, "streams_opened", 1);
  }));
  // ... and once its last connection closes, the old proxy exits.
  carried = Pair();
  meanwhile = Pair();
  ASSERT_OK(Eventually(
      "the old proxy exits",
      [&]() -> absl::Status {
        // Gone, or a zombie its new parent has not reaped yet.
        std::ifstream stat(absl::StrCat("/proc/", old, "/stat"));
        std::string pid, comm, state;
        if (!(stat >> pid >> comm >> state) || state == "Z") return absl::OkStatus();
        return absl::UnavailableError("still running");
      },
      10000));
}

}  // namespace
}  // namespace shunt::e2e

namespace shunt::e2e {
namespace {

// Certificates renewed under load: every request of a long connection and
// of a stream of new ones succeeds; new connections ride a tunnel made with
// the new certificate, the old tunnel finishes what it carries.
class MtlsRotationTest : public MtlsMeshTest {};

TEST_F(MtlsRotationTest, RotationUnderLoadFailsNoRequest) {
  ASSERT_OK_AND_ASSIGN(Pair longlived, CrossNode(7700));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd listener, n2_->PodSocket(*server_, SOCK_STREAM));
  ASSERT_OK(ListenOn(listener.get(), 7701));
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, long_rounds{0}, new_conns{0};
  std::string first_error;
  std::mutex mu;
  auto fail = [&](const absl::Status& s) {
    std::lock_guard<std::mutex> l(mu);
    if (failures++ == 0) first_error = std::string(s.message());
  };
  std::thread long_load([&] {
    for (int i = 0; !stop; ++i) {
      const std::string msg = absl::StrCat("req-", i % 10);
      absl::Status s = WriteAll(longlived.client.get(), msg);
      auto got =
          s.ok() ? ReadExactly(longlived.server.get(), msg.size()) : absl::StatusOr<std::string>(s);
      if (got.ok()) s = WriteAll(longlived.server.get(), msg);
      auto back = got.ok() && s.ok() ? ReadExactly(longlived.client.get(), msg.size()) : got;
      if (!back.ok() || *back != msg)
        return fail(back.ok() ? absl::DataLossError(*back) : back.status());
      ++long_rounds;
    }
  });
  std::thread new_load([&] {
    while (!stop) {
      auto c = n1_->PodSocket(*client_, SOCK_STREAM);
      absl::Status s = c.ok() ? ConnectTo(c->get(), server_->ip, 7701) : c.status();
      auto srv = s.ok() ? AcceptOne(listener.get()) : absl::StatusOr<lib::UniqueFd>(s);
      if (srv.ok()) s = WriteAll(c->get(), "x");
      auto got = srv.ok() && s.ok() ? ReadExactly(srv->get(), 1) : absl::StatusOr<std::string>(s);
      if (!srv.ok() || !got.ok()) return fail(!srv.ok() ? srv.status() : got.status());
      ++new_conns;
    }
  });
  ASSERT_OK(WaitCounter(*n1_, "streams_opened", 20));
  // Both nodes issue every certificate anew.
  for (TestNode* n : {n1_.get(), n2_.get()})
    ASSERT_OK(Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", n->api_socket(), " certs rotate"))
                  .status());
  // New connections go on a tunnel with the new certificate ...
  absl::Status rotated = WaitCounter(*n1_, "tunnels_opened", 2);
  // ... and keep working for a while after.
  const int after = new_conns + 50;
  absl::Status more = Eventually("50 more connections after the rotation", [&]() -> absl::Status {
    if (new_conns >= after || failures > 0) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(new_conns.load()));
  });
  stop = true;
  long_load.join();
  new_load.join();
  ASSERT_OK(rotated);
  ASSERT_OK(more);
  EXPECT_EQ(failures.load(), 0) << first_error;
  EXPECT_GT(long_rounds.load(), 0);
  std::printf("%d rounds on the long connection, %d new connections, no failure\n",
              long_rounds.load(), new_conns.load());
}

}  // namespace
}  // namespace shunt::e2e
