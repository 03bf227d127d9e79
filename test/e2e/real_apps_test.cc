// Real, unmodified programs through the short-circuit: redis-server and
// redis-benchmark from Debian.
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

class RealAppsTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (access("/usr/bin/redis-server", X_OK) != 0 || access("/usr/bin/redis-benchmark", X_OK) != 0)
      GTEST_FAIL() << "redis-server/redis-benchmark missing: run tools/install-deps.sh";
    StartMesh();
  }

  // Starts redis in the server pod and waits until it accepts.
  void StartRedis() {
    ASSERT_OK(node_->Spawn(*server_,
                           {"redis-server", "--port", "6379", "--bind", "0.0.0.0",
                            "--protected-mode", "no", "--save", "", "--appendonly", "no"},
                           node_->work_dir() + "/redis.log"));
    absl::Status up = Eventually(
        "redis accepts connections",
        [&]() -> absl::Status {
          SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, node_->PodSocket(*client_, SOCK_STREAM));
          return ConnectTo(s.get(), server_->ip, 6379);
        },
        10000);
    ASSERT_TRUE(up.ok()) << up << "\nredis log: " << Slurp(node_->work_dir() + "/redis.log");
  }
};

TEST_F(RealAppsTest, RedisBenchmarkRunsThroughTheShortCircuit) {
  StartRedis();
  const uint64_t msgs_before = Counter(SHUNT_CTR_MSG_REDIRECTED);
  const std::string log = node_->work_dir() + "/bench.log";
  ASSERT_OK_AND_ASSIGN(
      pid_t pid, node_->Spawn(*client_,
                              {"redis-benchmark", "-h", server_->ip, "-p", "6379", "-n", "20000",
                               "-c", "8", "-d", "256", "-q", "-t", "set,get,lpush,lpop"},
                              log));
  ASSERT_OK_AND_ASSIGN(int status, WaitExit(pid, 120000));
  const std::string out = Slurp(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  for (const char* test : {"SET", "GET", "LPUSH", "LPOP"})
    EXPECT_NE(out.find(absl::StrCat(test, ": ")), std::string::npos) << out;
  // 80,000 requests and as many replies, each at least one message; each of
  // the 32 connections' first request and reply take TCP (a flow waits for
  // its reader's first plain read).
  EXPECT_GE(Counter(SHUNT_CTR_MSG_REDIRECTED) - msgs_before, 160000u - 2 * 32);
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_PEER_MISS), 0u);
}

// Telemetry with a real client: one redis-benchmark connection doing 3,000
// SETs is one flow with 3,000 requests, each a send each way, and bytes that
// match the RESP protocol exactly.
TEST_F(RealAppsTest, RedisBenchmarkFlowCountsEveryRequestAndByte) {
  StartRedis();
  const std::string log = node_->work_dir() + "/bench.log";
  ASSERT_OK_AND_ASSIGN(
      pid_t pid, node_->Spawn(*client_,
                              {"redis-benchmark", "-h", server_->ip, "-p", "6379", "-n", "3000",
                               "-c", "1", "-d", "16", "-q", "-t", "set"},
                              log));
  ASSERT_OK_AND_ASSIGN(int status, WaitExit(pid, 60000));
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << Slurp(log);
  // redis-benchmark also asks CONFIG GET on its own connection, and the
  // probes of StartRedis are flows too: wait for the benchmark's own.
  nlohmann::json bench;
  ASSERT_OK(Eventually("the benchmark's flow is listed", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(auto flows,
                           ShuntctlFlows(*node_, "--state closed --to demo/server --port 6379"));
    for (const auto& f : flows)
      if (f["requests"].get<uint64_t>() >= 1000) bench = f;
    if (!bench.is_null()) return absl::OkStatus();
    return absl::NotFoundError(nlohmann::json(flows).dump());
  }));
  const nlohmann::json& f = bench;
  EXPECT_EQ(f["path"], "short-circuit");
  EXPECT_EQ(f["end"], "closed");
  EXPECT_EQ(f["requests"], 3000);
  EXPECT_EQ(f["msgs_to_server"], 3000);
  EXPECT_EQ(f["msgs_to_client"], 3000);
  // SET key:__rand_int__ <16 bytes>: "*3\r\n$3\r\nSET\r\n$16\r\nkey:__rand_int__\r\n$16\r\n" + 16 +
  // "\r\n" is 59 bytes; each reply "+OK\r\n" is 5.
  EXPECT_EQ(f["bytes_to_server"], 3000 * 59);
  EXPECT_EQ(f["bytes_to_client"], 3000 * 5);
  EXPECT_GT(f["response_latency_us"]["p50"].get<double>(), 0);

  // The same traffic through stat and top (piped: one snapshot, no escape
  // codes). StartRedis's probes before redis listened were refused: failures.
  ASSERT_OK_AND_ASSIGN(auto all, ShuntctlFlows(*node_, "--state closed --to demo/server"));
  uint64_t closed = 0, refused = 0;
  for (const auto& fl : all) {
    closed += fl["end"] == "closed";
    refused += fl["end"] == "refused";
  }
  ASSERT_EQ(closed + refused, all.size()) << nlohmann::json(all).dump();
  ASSERT_OK_AND_ASSIGN(
      std::string stat,
      Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node_->api_socket(), " stat pod -o json")));
  auto j = nlohmann::json::parse(stat, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << stat;
  bool found = false;
  for (const auto& row : j["rows"]) {
    if (row["name"] != "server") continue;
    found = true;
    EXPECT_EQ(row["successes"].get<uint64_t>(), closed);
    EXPECT_EQ(row["failures"].get<uint64_t>(), refused);
    EXPECT_GE(row["requests"].get<uint64_t>(), 3000u);
    EXPECT_DOUBLE_EQ(row["success_rate"].get<double>(),
                     static_cast<double>(closed) / (closed + refused));
  }
  EXPECT_TRUE(found) << stat;
  ASSERT_OK_AND_ASSIGN(std::string top, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                        node_->api_socket(), " top | cat")));
  EXPECT_NE(top.find("demo/sa/client"), std::string::npos) << top;
  EXPECT_NE(top.find("demo/sa/server"), std::string::npos) << top;
  EXPECT_NE(top.find(absl::StrFormat("%.2f%%", 100.0 * closed / (closed + refused))),
            std::string::npos)
      << top;
  EXPECT_EQ(top.find('\x1b'), std::string::npos) << "escape codes in piped output";
}

TEST_F(RealAppsTest, RedisStoresAndReturnsALargeValueIntact) {
  StartRedis();
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, node_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(s.get(), server_->ip, 6379));
  // A client's first command: once redis has read one, the short-circuit
  // carries the rest (a flow waits for its reader's first plain read).
  ASSERT_OK(WriteAll(s.get(), "*1\r\n$4\r\nPING\r\n"));
  ASSERT_OK_AND_ASSIGN(std::string pong, ReadExactly(s.get(), 7));
  EXPECT_EQ(pong, "+PONG\r\n");
  // Printable, so it is a plain RESP bulk string.
  std::string value = RandomBytes(4 * 1024 * 1024, 5);
  for (char& ch : value) ch = 'a' + (static_cast<unsigned char>(ch) % 26);
  ASSERT_OK(WriteAll(s.get(), absl::StrCat("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$", value.size(),
                                           "\r\n", value, "\r\n")));
  ASSERT_OK_AND_ASSIGN(std::string ok, ReadExactly(s.get(), 5));
  EXPECT_EQ(ok, "+OK\r\n");
  ASSERT_OK(WriteAll(s.get(), "*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n"));
  const std::string header = absl::StrCat("$", value.size(), "\r\n");
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(s.get(), header.size() + value.size() + 2));
  EXPECT_EQ(got.substr(0, header.size()), header);
  EXPECT_EQ(Fnv1a(got.substr(header.size(), value.size())), Fnv1a(value));
  EXPECT_GE(Counter(SHUNT_CTR_BYTES_REDIRECTED), 2 * value.size());
}

}  // namespace
}  // namespace shunt::e2e
