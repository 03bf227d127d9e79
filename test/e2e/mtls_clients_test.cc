// Real, unmodified clients and servers across two nodes through the mTLS
// tunnel (docs/mtls.md): curl against python's http.server, redis-benchmark
// against redis-server, iperf3; and tcpdump on the tunnel's port between
// the nodes, whose capture holds the transfer but none of its bytes in
// the clear.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mtls_fixture.h"

namespace shunt::e2e {
namespace {

class MtlsClientsTest : public MtlsMeshTest {
 protected:
  void TearDown() override {
    if (tcpdump_ > 0) KillAndReap(tcpdump_);
    MtlsMeshTest::TearDown();
  }

  absl::StatusOr<std::string> RunIn(TestNode& node, const TestPod& pod,
                                    const std::vector<std::string>& argv, int timeout_ms = 60000) {
    return RunInPod(node, pod, argv, timeout_ms);
  }
  // Waits until something in `pod` accepts on port (seen from the client pod).
  absl::Status WaitListening(const TestPod& pod, uint16_t port) {
    return Eventually(
        absl::StrCat(pod.name, " listens on ", port),
        [&]() -> absl::Status {
          SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n2_->PodSocket(pod, SOCK_STREAM));
          return ConnectTo(s.get(), pod.ip, port);
        },
        10000);
  }

  // tcpdump in node 1's namespace, on every interface, for the tunnel's port.
  absl::Status StartCapture(const std::string& pcap) {
    const std::string err = pcap + ".err";
    const std::string ns = "/run/netns/" + n1_->node_netns();
    tcpdump_ = fork();
    if (tcpdump_ < 0) return absl::InternalError("fork");
    if (tcpdump_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      int nsfd = open(ns.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) _exit(125);
      int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 2);
      execlp("tcpdump", "tcpdump", "-i", "any", "-U", "-s", "0", "-w", pcap.c_str(), "tcp", "port",
             "15008", nullptr);
      _exit(127);
    }
    return Eventually("tcpdump listens", [&]() -> absl::Status {
      if (Slurp(err).find("listening on") != std::string::npos) return absl::OkStatus();
      return absl::UnavailableError(Slurp(err));
    });
  }
  std::string StopCapture(const std::string& pcap) {
    kill(tcpdump_, SIGINT);
    (void)WaitExit(tcpdump_, 10000);
    tcpdump_ = -1;
    return Slurp(pcap);
  }

  pid_t tcpdump_ = -1;
};

TEST_F(MtlsClientsTest, CurlFetchesAcrossNodesAndTheWireCarriesNoPlaintext) {
  // A page of a known marker, served by python's http.server in the server pod.
  const std::string dir = n2_->work_dir() + "/www";
  std::filesystem::create_directories(dir);
  std::string page;
  while (page.size() < 256 * 1024) page += "SHUNT-PLAINTEXT-MARKER-0123456789\n";
  { std::ofstream(dir + "/page.txt") << page; }
  ASSERT_OK(n2_->Spawn(*server_, {"python3", "-m", "http.server", "8000", "--directory", dir},
                       n2_->work_dir() + "/http.log")
                .status());
  ASSERT_OK(WaitListening(*server_, 8000));
  const std::string pcap = n1_->work_dir() + "/tunnel.pcap";
  ASSERT_OK(StartCapture(pcap));
  const std::string got = n1_->work_dir() + "/got.txt";
  ASSERT_OK(RunIn(*n1_, *client_,
                  {"curl", "-sS", "--fail", "-o", got,
                   absl::StrCat("http://", server_->ip, ":8000/page.txt")})
                .status());
  EXPECT_EQ(Slurp(got), page);
  // The capture saw the transfer (its ciphertext is at least the page; the
  // last packets reach the file a little after curl is done) ...
  EXPECT_OK(Eventually("the capture holds the transfer", [&]() -> absl::Status {
    const size_t n = Slurp(pcap).size();
    if (n > page.size()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(n, " bytes"));
  }));
  const std::string wire = StopCapture(pcap);
  // ... and none of it in the clear: not the page, not the request.
  EXPECT_EQ(wire.find("SHUNT-PLAINTEXT-MARKER"), std::string::npos);
  EXPECT_EQ(wire.find("GET /page.txt"), std::string::npos);
  ASSERT_OK(WaitCounter(*n2_, "inbound_streams_accepted", 1));
}

TEST_F(MtlsClientsTest, RedisBenchmarkAcrossNodes) {
  ASSERT_OK(n2_->Spawn(*server_,
                       {"redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode",
                        "no", "--save", "", "--appendonly", "no"},
                       n2_->work_dir() + "/redis.log")
                .status());
  ASSERT_OK(WaitListening(*server_, 6379));
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunIn(*n1_, *client_,
                             {"redis-benchmark", "-h", server_->ip, "-p", "6379", "-n", "20000",
                              "-c", "16", "-d", "256", "-q", "-t", "set,get"}));
  EXPECT_NE(out.find("SET: "), std::string::npos) << out;
  EXPECT_NE(out.find("GET: "), std::string::npos) << out;
  // 16 connections per test, and a few of its own: streams of one tunnel.
  ASSERT_OK(WaitCounter(*n1_, "streams_opened", 32));
  EXPECT_EQ(ProxyCounter(*n1_, "tunnels_opened"), 1u);
}

TEST_F(MtlsClientsTest, Iperf3AcrossNodes) {
  ASSERT_OK(
      n2_->Spawn(*server_, {"iperf3", "-s", "-p", "5201"}, n2_->work_dir() + "/iperf3-server.log")
          .status());
  ASSERT_OK(WaitListening(*server_, 5201));
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunIn(*n1_, *client_, {"iperf3", "-c", server_->ip, "-p", "5201", "-t", "2", "-J"}));
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  ASSERT_FALSE(j.contains("error")) << out;
  const double received = j["end"]["sum_received"]["bytes"].get<double>();
  EXPECT_GT(received, 1e6) << out;
  std::printf("iperf3 through the tunnel: %.2f Gbit/s\n",
              j["end"]["sum_received"]["bits_per_second"].get<double>() / 1e9);
  ASSERT_OK(WaitCounter(*n1_, "bytes_to_peer", static_cast<uint64_t>(received)));
}

}  // namespace
}  // namespace shunt::e2e
