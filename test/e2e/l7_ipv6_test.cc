// HTTP-routes-only grants over native IPv6 (docs/l7.md): dual-stack pods,
// each node proxy on the node's IPv6 address too. connect6 sends a local
// pod's connection to the proxy's L7 port on IPv6 (to_l7_proxy6), another
// node's pod's to the mTLS tunnel (hand_off6), whose receiving proxy runs
// the L7 layer; the TC guard lets the proxy's connection from the client's
// IPv6 address through (marked) and marks the server's replies for it.
// Real programs: curl with an IPv6 URL, python's http.server bound to ::.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/l7_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// How many lines of http.server's log show `ip` as the client.
int LinesFrom(const std::string& log, const std::string& ip) {
  int n = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n'))
    if (absl::StartsWith(line, ip + " - - ")) ++n;
  return n;
}

// curl in `pod`: the three URLs on one connection; each answer's status
// line and body.
std::vector<std::string> ThreeAnswers(const std::string& out) {
  return absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty());
}

class L7Ipv6Test : public L7ProxyTest {
 protected:
  L7Ipv6Test() { dual_stack_ = true; }
  std::string Url6(const std::string& path) const {
    return absl::StrCat("http://[", local_->ip6, "]:8000", path);
  }
};

TEST_F(L7Ipv6Test, EachRequestIsJudgedOnANativeIpv6Connection) {
  ASSERT_FALSE(client_->ip6.empty());
  ASSERT_FALSE(local_->ip6.empty());
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInClient({"curl", "-g", "-sSi", "-w", "\n[%{http_code} %{num_connects}]\n",
                   Url6("/allowed.txt"), Url6("/denied.txt"), Url6("/allowed.txt")}));
  const std::vector<std::string> answers = ThreeAnswers(out);
  ASSERT_EQ(answers.size(), 3u) << out;
  EXPECT_THAT(answers[0], HasSubstr("ALLOWED-PAGE\n\n[200 1]"));
  EXPECT_THAT(answers[1], HasSubstr("x-shunt-denied: no-route-matched"));
  EXPECT_THAT(answers[1], HasSubstr("[403 0]"));
  EXPECT_THAT(answers[2], HasSubstr("ALLOWED-PAGE\n\n[200 0]"));
  // The server saw the two allowed GETs, from the client's own IPv6
  // address, and never the denied one.
  ASSERT_OK(Eventually("the server logged both GETs", [&]() -> absl::Status {
    if (LinesFrom(Slurp(server_log_), client_->ip6) == 2) return absl::OkStatus();
    return absl::UnavailableError(Slurp(server_log_));
  }));
  EXPECT_THAT(Slurp(server_log_), Not(HasSubstr("denied.txt")));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 3));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 1u);
  EXPECT_EQ(ProxyCounter(*n1_, "inbound_transparent_failed"), 0u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "l7") continue;
    ++seen;
    EXPECT_EQ(d["src_ip"], client_->ip6) << d.dump();
    EXPECT_EQ(d["path"], "/denied.txt") << d.dump();
  }
  EXPECT_EQ(seen, 1);
}

// A grant of nothing (another pod, no TrafficTarget) stays refused at
// connect() on IPv6 as on IPv4: the L7 port is only for HTTP-routes grants.
TEST_F(L7Ipv6Test, WithoutAGrantTheConnectIsStillRefused) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, n1_->PodSocket(*local_, SOCK_STREAM, AF_INET6));
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(8000);
  ASSERT_EQ(inet_pton(AF_INET6, client_->ip6.c_str(), &to.sin6_addr), 1);
  EXPECT_NE(connect(s.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  EXPECT_EQ(errno, EPERM);
}

class L7CrossNodeIpv6Test : public L7CrossNodeTest {
 protected:
  L7CrossNodeIpv6Test() { dual_stack_ = true; }
};

TEST_F(L7CrossNodeIpv6Test, TheReceivingProxyJudgesEachRequest) {
  const std::string log = n2_->work_dir() + "/http.log";
  ASSERT_OK(StartHttpServer(*n2_, *server_, n2_->work_dir() + "/www", log, "::"));
  const std::string base = absl::StrCat("http://[", server_->ip6, "]:8000");
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"curl", "-g", "-sSi", "-w", "\n[%{http_code} %{num_connects}]\n",
                base + "/allowed.txt", base + "/denied.txt", base + "/allowed.txt"}));
  const std::vector<std::string> answers = ThreeAnswers(out);
  ASSERT_EQ(answers.size(), 3u) << out;
  EXPECT_THAT(answers[0], HasSubstr("ALLOWED-PAGE\n\n[200 1]"));
  EXPECT_THAT(answers[1], HasSubstr("[403 0]"));
  EXPECT_THAT(answers[2], HasSubstr("ALLOWED-PAGE\n\n[200 0]"));
  ASSERT_OK(Eventually("the server logged both GETs", [&]() -> absl::Status {
    if (LinesFrom(Slurp(log), client_->ip6) == 2) return absl::OkStatus();
    return absl::UnavailableError(Slurp(log));
  }));
  EXPECT_THAT(Slurp(log), Not(HasSubstr("denied.txt")));
  // Node 2 judged; node 1 only tunnelled.
  ASSERT_OK(WaitCounter(*n2_, "l7_requests", 3));
  EXPECT_EQ(ProxyCounter(*n2_, "l7_requests_denied"), 1u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests"), 0u);
}

}  // namespace
}  // namespace shunt::e2e
