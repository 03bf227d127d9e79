// Why a flow between two local pods is on TCP, as a user finds it: the
// flow's path and reason in `shuntctl flows`, a count per reason in
// `shuntctl status` and /metrics.
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/counters.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class TcpReasonTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh({"--metrics-addr=127.0.0.1:0"});
  }
};

TEST_F(TcpReasonTest, FlowsStatusAndMetricsSayWhyAFlowTookTcp) {
  {
    // A record reader with MSG_WAITALL: its flow takes TCP.
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7901));
    ASSERT_OK(WriteAll(c.client.get(), std::string(100, 'w')));
    char buf[100];
    ASSERT_EQ(recv(c.server.get(), buf, sizeof(buf), MSG_WAITALL), 100);
    ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
    // Its sockets then leave the sockhash (once TCP acked their data), and
    // the kernel serves them as plain TCP sockets: FIONREAD counts bytes
    // that came by TCP (in the sockhash it counts only redirected ones).
    ASSERT_OK(Eventually("both ends leave the sockhash", [&]() -> absl::Status {
      if (Counter(SHUNT_CTR_SOCK_RELEASED) >= 2) return absl::OkStatus();
      SHUNT_RETURN_IF_ERROR(WarmUp(c.client.get(), c.server.get()));
      return absl::UnavailableError(absl::StrCat(Counter(SHUNT_CTR_SOCK_RELEASED), " released"));
    }));
    ASSERT_OK(WriteAll(c.client.get(), std::string(1000, 'f')));
    ASSERT_OK(Eventually("FIONREAD counts the TCP bytes", [&]() -> absl::Status {
      int inq = -1;
      ioctl(c.server.get(), FIONREAD, &inq);
      if (inq == 1000) return absl::OkStatus();
      return absl::UnavailableError(absl::StrCat("FIONREAD ", inq));
    }));
    ASSERT_OK(ReadExactly(c.server.get(), 1000).status());
    // A plain reader on another connection: short-circuited after its first exchange.
    ASSERT_OK_AND_ASSIGN(Conn d, Connect(*client_, *server_, 7902));
    ASSERT_OK(WarmUp(d.client.get(), d.server.get()));
    ASSERT_OK(WarmUp(d.client.get(), d.server.get()));
  }
  ASSERT_OK_AND_ASSIGN(auto waitall, WaitFlows(*node_, "--state closed --port 7901", 1));
  EXPECT_EQ(waitall[0]["path"], "tcp") << waitall[0].dump();
  EXPECT_EQ(waitall[0]["tcp_reason"], "recv-waitall") << waitall[0].dump();
  ASSERT_OK_AND_ASSIGN(auto plain, WaitFlows(*node_, "--state closed --port 7902", 1));
  EXPECT_EQ(plain[0]["path"], "short-circuit") << plain[0].dump();
  EXPECT_FALSE(plain[0].contains("tcp_reason")) << plain[0].dump();

  ASSERT_OK_AND_ASSIGN(std::string table,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(),
                                       " flows --state closed --port 7901")));
  EXPECT_NE(table.find("tcp (recv-waitall)"), std::string::npos) << table;

  ASSERT_OK_AND_ASSIGN(std::string st,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                                       node_->api_socket(), " status -o json")));
  auto j = nlohmann::json::parse(st, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << st;
  EXPECT_EQ(j["flows_on_tcp"]["recv-waitall"], 1) << j["flows_on_tcp"].dump();
  EXPECT_EQ(j["agent"]["short_circuit"]["on"], true);

  ASSERT_OK_AND_ASSIGN(nlohmann::json agent, node_->AgentStatus());
  ASSERT_OK_AND_ASSIGN(std::string metrics,
                       HttpGetInNode(*node_, agent["metrics_addr"].get<std::string>(), "/metrics"));
  EXPECT_NE(metrics.find("shunt_flows_on_tcp_total{reason=\"recv-waitall\"} 1\n"),
            std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace shunt::e2e
