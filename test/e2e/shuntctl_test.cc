// shuntctl as a user runs it: tables and JSON from the pins and the agent,
// and still from the pins alone while the agent is down.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <regex>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class ShuntctlTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh();
  }
  absl::StatusOr<std::string> Ctl(const std::string& args) {
    return Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs ", node_->bpffs(), " --api-socket ",
                           node_->api_socket(), " ", args));
  }
  absl::StatusOr<nlohmann::json> CtlJson(const std::string& args) {
    auto out = Ctl(args + " -o json");
    if (!out.ok()) return out.status();
    auto j = nlohmann::json::parse(*out, nullptr, false);
    if (j.is_discarded()) return absl::InternalError("not JSON: " + *out);
    return j;
  }
};

TEST_F(ShuntctlTest, StatusShowsAgentProgramsMapsAndCounters) {
  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7501));
  ASSERT_OK(WarmUp(c.client.get(), c.server.get()));
  ASSERT_OK(WriteAll(c.client.get(), "x"));
  ASSERT_OK(ReadExactly(c.server.get(), 1));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, CtlJson("status"));
  EXPECT_EQ(st["agent"]["running"], true);
  EXPECT_EQ(st["agent"]["node"], "n1");
  EXPECT_EQ(st["agent"]["pid"], node_->agent_pid());
  // The ten hooks of the data path, then the socket watch's four.
  ASSERT_EQ(st["links"].size(), 14u);
  EXPECT_EQ(st["links"][0]["prog_name"], "shunt_sockops");
  EXPECT_EQ(st["links"][0]["attach_type"], "cgroup_sock_ops");
  EXPECT_EQ(st["links"][1]["prog_name"], "shunt_sk_msg");
  EXPECT_EQ(st["links"][2]["prog_name"], "shunt_connect4");
  EXPECT_EQ(st["links"][2]["attach_type"], "cgroup_inet4_connect");
  EXPECT_EQ(st["links"][3]["prog_name"], "shunt_sendmsg4");
  EXPECT_EQ(st["links"][4]["prog_name"], "shunt_getpeerna");  // BPF names stop at 15 chars
  EXPECT_EQ(st["links"][4]["attach_type"], "cgroup_inet4_getpeername");
  EXPECT_EQ(st["links"][5]["prog_name"], "shunt_recvmsg4");
  EXPECT_EQ(st["links"][6]["prog_name"], "shunt_connect6");
  EXPECT_EQ(st["links"][6]["attach_type"], "cgroup_inet6_connect");
  EXPECT_EQ(st["links"][7]["attach_type"], "cgroup_inet6_getpeername");
  EXPECT_EQ(st["links"][8]["prog_name"], "shunt_recvmsg6");
  EXPECT_EQ(st["links"][5]["attach_type"], "cgroup_udp4_recvmsg");
  EXPECT_EQ(st["counters"]["sockets_short_circuited"], 2);
  EXPECT_EQ(st["counters"]["messages_redirected"], 1);
  bool saw_sockhash = false;
  for (const auto& m : st["maps"])
    if (m["name"] == "shunt_sockhash_v1") {
      saw_sockhash = true;
      EXPECT_EQ(m["entries"], 2);
      EXPECT_EQ(m["max_entries"], 65536);
    }
  EXPECT_TRUE(saw_sockhash);
  ASSERT_OK_AND_ASSIGN(std::string text, Ctl("status"));
  EXPECT_NE(text.find("Agent:     running"), std::string::npos) << text;
  const size_t at = text.find("  sockets_short_circuited ");
  ASSERT_NE(at, std::string::npos) << text;
  const std::string line = text.substr(at, text.find('\n', at) - at);
  EXPECT_EQ(line.substr(line.find_last_of(' ') + 1), "2") << line;
  EXPECT_NE(text.find("Local pods: 2 (2 meshed)"), std::string::npos) << text;
}

TEST_F(ShuntctlTest, EndpointsAndMapDumpsAreDecoded) {
  ASSERT_OK_AND_ASSIGN(nlohmann::json eps, CtlJson("endpoints"));
  ASSERT_EQ(eps.size(), 2u);
  std::map<std::string, nlohmann::json> by_name;
  for (const auto& e : eps) by_name[e["name"]] = e;
  EXPECT_EQ(by_name["client"]["namespace"], "demo");
  EXPECT_EQ(by_name["client"]["ip"], client_->ip);
  EXPECT_EQ(by_name["server"]["service_account"], "server");
  EXPECT_GT(by_name["server"]["netns_cookie"].get<uint64_t>(), 0u);
  EXPECT_NE(by_name["client"]["identity"], by_name["server"]["identity"]);

  ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, 7502));
  ASSERT_OK_AND_ASSIGN(nlohmann::json socks, CtlJson("maps dump sockhash"));
  ASSERT_EQ(socks.size(), 2u);
  std::set<std::string> locals;
  for (const auto& s : socks) locals.insert(s["local"].get<std::string>());
  EXPECT_TRUE(locals.count(server_->ip + ":7502")) << socks.dump();
  ASSERT_OK_AND_ASSIGN(std::string table, Ctl("maps dump ipcache"));
  EXPECT_NE(table.find(client_->ip), std::string::npos) << table;
  EXPECT_NE(table.find("local"), std::string::npos) << table;
  ASSERT_OK_AND_ASSIGN(std::string maps, Ctl("maps"));
  // A row per map: name, then its type (column widths follow the longest name).
  EXPECT_TRUE(std::regex_search(maps, std::regex(R"(\nshunt_endpoints_v2 +hash +8 +32 )"))) << maps;
  EXPECT_TRUE(std::regex_search(maps, std::regex(R"(\nshunt_flows_v3 +lru_hash +16 +128 )")))
      << maps;
}

TEST_F(ShuntctlTest, WorksFromThePinsWhileTheAgentIsDown) {
  ASSERT_OK(node_->StopAgent(SIGKILL));
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, CtlJson("status"));
  EXPECT_EQ(st["agent"]["running"], false);
  EXPECT_NE(st["agent"]["error"].get<std::string>().find("agent not reachable"), std::string::npos);
  EXPECT_EQ(st["links"][0]["pinned"], true);
  ASSERT_OK_AND_ASSIGN(nlohmann::json eps, CtlJson("endpoints"));
  EXPECT_EQ(eps.size(), 2u);
  ASSERT_OK_AND_ASSIGN(std::string text, Ctl("status"));
  EXPECT_NE(text.find("NOT RUNNING"), std::string::npos) << text;
}

TEST_F(ShuntctlTest, MistakesGiveAClearMessageAndNonZeroExit) {
  auto missing = Sh(absl::StrCat(SHUNTCTL_BIN, " --bpffs /sys/fs/bpf/no-such-shunt endpoints"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(
      std::string(missing.status().message()).find("no Shunt pins in /sys/fs/bpf/no-such-shunt"),
      std::string::npos)
      << missing.status();
  auto unknown = Ctl("maps dump nosuchmap");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(std::string(unknown.status().message()).find("no map named 'nosuchmap'"),
            std::string::npos);
  auto bad_cmd = Ctl("frobnicate");
  ASSERT_FALSE(bad_cmd.ok());
  EXPECT_NE(std::string(bad_cmd.status().message()).find("unknown command 'frobnicate'"),
            std::string::npos);
  ASSERT_OK_AND_ASSIGN(std::string help, Sh(absl::StrCat(SHUNTCTL_BIN, " --help")));
  EXPECT_NE(help.find("EXAMPLES"), std::string::npos);
}

}  // namespace
}  // namespace shunt::e2e
