// Real, unmodified programs through the short-circuit: redis-server and
// redis-benchmark from Debian.
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

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
    for (int i = 0; i < 200; ++i) {
      auto s = node_->PodSocket(*client_, SOCK_STREAM);
      ASSERT_OK(s);
      if (ConnectTo(s->get(), server_->ip, 6379).ok()) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    FAIL() << "redis did not start: " << Slurp(node_->work_dir() + "/redis.log");
  }
};

TEST_F(RealAppsTest, RedisBenchmarkRunsThroughTheShortCircuit) {
  StartRedis();
  const uint64_t msgs_before = Counter(SHUNT_CTR_MSG_REDIRECTED);
  const std::string log = node_->work_dir() + "/bench.log";
  ASSERT_OK_AND_ASSIGN(pid_t pid, node_->Spawn(*client_,
                                               {"redis-benchmark", "-h", server_->ip, "-p", "6379",
                                                "-n", "20000", "-c", "8", "-d", "256", "-q",
                                                "-t", "set,get,lpush,lpop"},
                                               log));
  ASSERT_OK_AND_ASSIGN(int status, WaitExit(pid, 120000));
  const std::string out = Slurp(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  for (const char* test : {"SET", "GET", "LPUSH", "LPOP"})
    EXPECT_NE(out.find(absl::StrCat(test, ": ")), std::string::npos) << out;
  // 80,000 requests and as many replies, each at least one message.
  EXPECT_GE(Counter(SHUNT_CTR_MSG_REDIRECTED) - msgs_before, 160000u);
  EXPECT_EQ(Counter(SHUNT_CTR_MSG_PEER_MISS), 0u);
}

TEST_F(RealAppsTest, RedisStoresAndReturnsALargeValueIntact) {
  StartRedis();
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, node_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(s.get(), server_->ip, 6379));
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
