// Services balanced per request by the L7 layer (docs/l7.md "Services
// balanced per request"): a Service with shunt.dev/ annotations, or the root
// of a TrafficSplit with matches, is flagged for the kernel, which sends a
// meshed pod's connection to its clusterIP to the node proxy's L7 port; each
// request then picks its endpoint (on this node, or on the other through
// the mTLS tunnel). Real clients (curl) against a real HTTP server
// (testdata/l7_backend.py) that fails or stalls on purpose.
#include <sys/socket.h>
#include <sys/wait.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "shunt/abi/counters.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mtls_fixture.h"
#include "test/e2e/harness/service_yaml.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kFlakyVip[] = "10.96.0.20";    // retries: 2; local:8080 fails every other
constexpr char kSteadyVip[] = "10.96.0.21";   // timeout: 300ms; local:8081
constexpr char kWebVip[] = "10.96.0.22";      // split by header: v1 local:8081, v2 server:8080
constexpr char kBrittleVip[] = "10.96.0.25";  // ejection: local:8081, local:8082 (broken)
constexpr char kGoneVip[] = "10.96.0.26";     // retries: 2; server:8082, where nothing listens

class L7ServiceTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    n1_flags_ = {"--mode=enforce", "--metrics-addr=127.0.0.1:0"};
    n2_flags_ = {"--mode=enforce"};
    n1_flags_.insert(n1_flags_.end(), n1_more_.begin(), n1_more_.end());
    n2_flags_.insert(n2_flags_.end(), n2_more_.begin(), n2_more_.end());
    // Pods exist once the fixture made them: the objects that name their
    // addresses are written after, and the agents read them at start.
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string grants = R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: web-ports, namespace: demo}
spec: {matches: {ports: [8080, 8081, 8082]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-local, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: web-ports}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-server, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: web-ports}]
---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: beta-users, namespace: demo}
spec:
  matches:
  - name: beta
    headers: {x-user: beta}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: web-ab, namespace: demo}
spec:
  service: web
  matches: [{kind: HTTPRouteGroup, name: beta-users}]
  backends:
  - {service: web-v1, weight: 90}
  - {service: web-v2, weight: 10}
)";
    const std::string services =
        Service("flaky", kFlakyVip, "shunt.dev/retries: \"2\"") + Slice("flaky", *local_, 8080) +
        Service("steady", kSteadyVip, "shunt.dev/timeout: 300ms") + Slice("steady", *local_, 8081) +
        Service("web", "10.96.0.22", "") + Slice("web", *local_, 8081) +
        Service("web-v1", "10.96.0.23", "") + Slice("web-v1", *local_, 8081) +
        Service("web-v2", "10.96.0.24", "") + Slice("web-v2", *server_, 8080) +
        Service("brittle", kBrittleVip,
                "shunt.dev/outlier-consecutive-failures: \"2\", shunt.dev/outlier-ejection: 1s") +
        Slice("brittle", *local_, 8081) + Slice("brittle", *local_, 8082, "2") +
        Service("gone", kGoneVip, "shunt.dev/retries: \"2\"") + Slice("gone", *server_, 8082);
    for (TestNode* n : {n1_.get(), n2_.get()})
      ASSERT_OK(n->ApplyConfigFile("services.yaml", grants + services));
    flaky_log_ = n1_->work_dir() + "/flaky.log";
    steady_log_ = n1_->work_dir() + "/steady.log";
    remote_log_ = n2_->work_dir() + "/remote.log";
    ASSERT_OK(StartBackend(*n1_, *local_, "flaky", 8080, {"--fail-every", "2"}, flaky_log_));
    ASSERT_OK(StartBackend(*n1_, *local_, "steady", 8081, {}, steady_log_));
    ASSERT_OK(StartBackend(*n2_, *server_, "remote", 8080, {}, remote_log_));
    ASSERT_OK(StartBackend(*n1_, *local_, "broken", 8082, {}, n1_->work_dir() + "/broken.log"));
    // The proxy has the services once the kernel flags them and the proxy
    // says it balances them.
    ASSERT_OK(Eventually("node 1's proxy balances the services", [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n1_->AgentStatus());
      const auto& s = st["mtls"]["l7_services"];
      // flaky, steady, web, brittle, gone
      if (s.is_number() && s.get<int>() == 5) return absl::OkStatus();
      return absl::UnavailableError(st["mtls"].dump());
    }));
  }

  static absl::Status StartBackend(TestNode& node, const TestPod& pod, const std::string& name,
                                   int port, std::vector<std::string> extra,
                                   const std::string& log) {
    std::vector<std::string> argv = {"python3", SHUNT_E2E_TESTDATA "/l7_backend.py",
                                     "--name",  name,
                                     "--port",  std::to_string(port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    SHUNT_RETURN_IF_ERROR(node.Spawn(pod, argv, log).status());
    return Eventually(absl::StrCat(name, " listens"), [&]() -> absl::Status {
      if (Slurp(log).find("listening") == std::string::npos)
        return absl::UnavailableError("not yet");
      return absl::OkStatus();
    });
  }

  // curl in the client pod: each (method, url, extra header) on one
  // connection; the answers' status lines and bodies.
  struct Req {
    std::string method, url, header;
  };
  absl::StatusOr<std::vector<std::string>> Curl(const std::vector<Req>& reqs) {
    std::vector<std::string> argv = {"curl"};
    for (const Req& r : reqs) {
      if (argv.size() > 1) argv.push_back("--next");
      for (const std::string& a : {std::string("-sSi"), std::string("-X"), r.method,
                                   std::string("-w"), std::string("[%{http_code}]\n"), r.url})
        argv.push_back(a);
      if (!r.header.empty()) {
        argv.push_back("-H");
        argv.push_back(r.header);
      }
    }
    SHUNT_ASSIGN_OR_RETURN(std::string out, RunInPod(*n1_, *client_, argv, 60000));
    std::vector<std::string> answers = absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty());
    if (answers.size() != reqs.size())
      return absl::InternalError(absl::StrCat(answers.size(), " answers to ", reqs.size(),
                                              " requests: ", out.substr(0, 2000)));
    return answers;
  }
  static int CountLines(const std::string& log, const std::string& what) {
    int n = 0;
    for (absl::string_view line : absl::StrSplit(log, '\n'))
      if (absl::StrContains(line, what)) ++n;
    return n;
  }

  std::vector<std::string> n1_more_, n2_more_;  // a variant's own flags, last
  std::string flaky_log_, steady_log_, remote_log_;
};

TEST_F(L7ServiceTest, RetriesRecoverIdempotentRequestsAndNeverResendAPost) {
  // The backend fails every other request (the first included): each GET
  // fails once and succeeds on its retry; the client sees only 200s.
  std::vector<Req> gets;
  for (int i = 0; i < 10; ++i)
    gets.push_back({"GET", absl::StrCat("http://", kFlakyVip, "/get-", i), ""});
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> answers, Curl(gets));
  for (size_t i = 0; i < answers.size(); ++i)
    EXPECT_THAT(answers[i], HasSubstr("[200]")) << i << ": " << answers[i];
  // It got twenty: ten failed, ten answered, each GET twice.
  ASSERT_OK(Eventually("the backend logged 20 GETs", [&]() -> absl::Status {
    const int n = CountLines(Slurp(flaky_log_), "flaky GET /get-");
    if (n == 20) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(n, " GETs"));
  }));
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(CountLines(Slurp(flaky_log_), absl::StrCat("flaky GET /get-", i, " ")), 2) << i;
  // From the client pod's own address, not the proxy's.
  EXPECT_THAT(Slurp(flaky_log_), HasSubstr(absl::StrCat(" ", client_->ip, " ")));

  // POST is not idempotent: its failure reaches the client, once each.
  std::vector<Req> posts;
  for (int i = 0; i < 4; ++i)
    posts.push_back({"POST", absl::StrCat("http://", kFlakyVip, "/post-", i), ""});
  ASSERT_OK_AND_ASSIGN(answers, Curl(posts));
  EXPECT_THAT(answers[0], HasSubstr("[503]"));
  EXPECT_THAT(answers[1], HasSubstr("[200]"));
  EXPECT_THAT(answers[2], HasSubstr("[503]"));
  EXPECT_THAT(answers[3], HasSubstr("[200]"));
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(CountLines(Slurp(flaky_log_), absl::StrCat("flaky POST /post-", i, " ")), 1) << i;
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 14));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 10u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries_over_budget"), 0u);
  EXPECT_GE(ProxyCounter(*n1_, "l7_service_connections"), 2u);
  auto c = n1_->Counters();
  ASSERT_OK(c.status());
  EXPECT_GE((*c)[SHUNT_CTR_L7_SERVICE_HANDED_OFF], 2u);
}

// The service's only endpoint is on node 2, which refuses the tunnel
// stream (nothing listens there): node 1's L7 layer sees its in-process
// stream reset before any byte, a connect failure, retries it twice, and
// answers 502 at once; the connection goes on.
TEST_F(L7ServiceTest, AnEndpointOnAnotherNodeThatRefusesIsAConnectFailure) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> answers,
                       Curl({{"GET", absl::StrCat("http://", kGoneVip, "/x"), ""},
                             {"GET", absl::StrCat("http://", kSteadyVip, "/after"), ""}}));
  EXPECT_THAT(answers[0], HasSubstr("[502]"));
  EXPECT_THAT(answers[0], HasSubstr("x-shunt-error: upstream-connect-failed"));
  EXPECT_THAT(answers[1], HasSubstr("backend=steady status=200 path=/after"));
  // Each attempt reached node 2, which found nothing listening.
  ASSERT_OK(WaitRefusal(*n2_, "pod-refused", 3));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 2));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 2u);
  EXPECT_EQ(ProxyCounter(*n1_, "streams_refused_by_peer"), 3u);
}

TEST_F(L7ServiceTest, ARouteTimeoutAnswers504AndTheConnectionGoesOn) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> answers,
                       Curl({{"GET", absl::StrCat("http://", kSteadyVip, "/slow"), ""},
                             {"GET", absl::StrCat("http://", kSteadyVip, "/fast"), ""}}));
  EXPECT_THAT(answers[0], HasSubstr("[504]"));
  EXPECT_THAT(answers[0], HasSubstr("x-shunt-error: upstream-timeout"));
  EXPECT_THAT(answers[1], HasSubstr("backend=steady status=200 path=/fast"));
  EXPECT_THAT(answers[1], HasSubstr("[200]"));
}

TEST_F(L7ServiceTest, ASplitByHeaderSendsOnlyMatchingRequestsToItsBackends) {
  // With the header: 90/10 between web-v1 (this node) and web-v2 (the
  // other node, through the tunnel). 300 requests: web-v2's share is 30
  // +- 5.2 (one standard deviation); 12..55 is over 3.4 of them.
  std::vector<Req> beta, plain;
  for (int i = 0; i < 300; ++i)
    beta.push_back({"GET", absl::StrCat("http://", kWebVip, "/b", i), "x-user: beta"});
  for (int i = 0; i < 30; ++i)
    plain.push_back({"GET", absl::StrCat("http://", kWebVip, "/p", i), ""});
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> answers, Curl(beta));
  std::map<std::string, int> by_backend;
  for (const std::string& a : answers) {
    EXPECT_THAT(a, HasSubstr("[200]")) << a;
    ++by_backend[a.find("x-backend: remote") != std::string::npos   ? "remote"
                 : a.find("x-backend: steady") != std::string::npos ? "steady"
                                                                    : "other"];
  }
  std::printf("split by header: %d of 300 to web-v2 (other node), %d to web-v1\n",
              by_backend["remote"], by_backend["steady"]);
  EXPECT_EQ(by_backend["other"], 0);
  EXPECT_GE(by_backend["remote"], 12);
  EXPECT_LE(by_backend["remote"], 55);
  // Without it: the root service's own endpoints, all on this node.
  ASSERT_OK_AND_ASSIGN(answers, Curl(plain));
  for (const std::string& a : answers) EXPECT_THAT(a, HasSubstr("x-backend: steady")) << a;
  // The other node's pod saw the client pod's address (the tunnel's
  // receiving proxy connects from it).
  EXPECT_THAT(Slurp(remote_log_), HasSubstr(absl::StrCat(" ", client_->ip, " ")));
  EXPECT_THAT(Slurp(remote_log_), Not(HasSubstr("/p")));
}

TEST_F(L7ServiceTest, AFailingEndpointIsEjectedAndProbedBackInOnceHealed) {
  // brittle: steady (8081) and broken (8082: once both are known to the
  // balancer, 500 to everything until healed), ejected after 2 failures in
  // a row, for 1 s. One connection, so one proxy thread's balancer sees it
  // all.
  const std::string log = n1_->work_dir() + "/breaker.log";
  ASSERT_OK_AND_ASSIGN(
      pid_t pid,
      n1_->Spawn(*client_,
                 {"python3", SHUNT_E2E_TESTDATA "/l7_breaker_client.py", "--service", kBrittleVip,
                  "--heal", absl::StrCat(local_->ip, ":8082"), "--broken", "broken"},
                 log));
  absl::StatusOr<int> st = WaitExit(pid, 60000);
  if (!st.ok()) KillAndReap(pid);
  const std::string out = Slurp(log);
  ASSERT_TRUE(st.ok() && WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << out;
  std::printf("%s", out.c_str());
  // Both served while healthy. Then a 500 is a fast answer to the balancer
  // (as fast as its 200s were): broken keeps its share until its second
  // failure in a row ejects it; the next 20 requests (far less than the
  // 1 s) all go to steady.
  int warm_broken = 0, failed = 0, settled = 0;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (line == "warm 200 broken") ++warm_broken;
    if (line == "before 500 broken") ++failed;
    if (line == "settle 200 steady") ++settled;
  }
  EXPECT_GT(warm_broken, 0) << out;
  EXPECT_EQ(failed, 2) << out;
  EXPECT_EQ(settled, 20) << out;
  // After it: the ejection ended, a probe went to broken and it answered.
  EXPECT_THAT(out, HasSubstr("after 200 broken"));
  EXPECT_THAT(out, Not(HasSubstr("after 500")));
  // What `shuntctl lb explain` says of it now: healthy again, once ejected.
  ASSERT_OK(Eventually("lb explain shows the endpoint healthy again", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(std::string json,
                           Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", n1_->api_socket(),
                                           " lb explain demo/brittle -o json")));
    auto j = nlohmann::json::parse(json, nullptr, false);
    if (j.is_discarded()) return absl::InternalError(json);
    for (const auto& t : j["services"][0]["per_request"])
      for (const auto& l : t["leaves"])
        for (const auto& e : l["endpoints"])
          if (e["address"] == absl::StrCat(local_->ip, ":8082") && e["ejections_total"] == 1 &&
              e["state"] == "healthy")
            return absl::OkStatus();
    return absl::UnavailableError(json);
  }));
  // The human-readable form names the state and the choices' reasons.
  ASSERT_OK_AND_ASSIGN(std::string text,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", n1_->api_socket(),
                                       " lb explain demo/brittle")));
  EXPECT_THAT(text, HasSubstr("per request, in the node proxy"));
  EXPECT_THAT(text, HasSubstr("leaf demo/brittle"));
  EXPECT_THAT(text, HasSubstr("healthy"));
  // /metrics counts the ejection.
  ASSERT_OK_AND_ASSIGN(nlohmann::json status, n1_->AgentStatus());
  ASSERT_OK_AND_ASSIGN(std::string metrics,
                       HttpGetInNode(*n1_, status["metrics_addr"].get<std::string>(), "/metrics"));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat(
                           "shunt_l7_endpoint_ejections_total{service=\"demo/brittle\",port=\"80\","
                           "leaf=\"demo/brittle\",endpoint=\"",
                           local_->ip, ":8082\"} 1")));
}

// One GET on a kept-alive connection: the answer's head and body.
absl::StatusOr<std::string> GetOn(int fd, const std::string& path) {
  SHUNT_RETURN_IF_ERROR(
      WriteAll(fd, absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: steady\r\n\r\n")));
  std::string got;
  for (;;) {
    const size_t head = got.find("\r\n\r\n");
    if (head != std::string::npos) {
      const size_t at = absl::AsciiStrToLower(got).find("content-length: ");
      if (at == std::string::npos || at > head) return absl::InternalError("no length: " + got);
      const size_t length = std::stoul(got.substr(at + 16));
      if (got.size() >= head + 4 + length) return got;
    }
    SHUNT_ASSIGN_OR_RETURN(std::string more, ReadExactly(fd, 1));
    got += more;
  }
}

// A client connection idle past a second gives its upstream connection to
// the proxy's shared pool (HAProxy's http-reuse): the pod's next client
// connection is served on it, so two client connections hold one
// connection to the server, not two.
TEST_F(L7ServiceTest, AnIdleClientsUpstreamConnectionServesThePodsNextClientConnection) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd first, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(first.get(), kSteadyVip, 80));
  ASSERT_OK_AND_ASSIGN(std::string a, GetOn(first.get(), "/one"));
  EXPECT_THAT(a, HasSubstr("backend=steady status=200 path=/one"));
  // The state, not a sleep: the proxy says it parked the connection.
  ASSERT_OK(WaitCounter(*n1_, "l7_upstreams_parked", 1));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd second, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(second.get(), kSteadyVip, 80));
  ASSERT_OK_AND_ASSIGN(std::string b, GetOn(second.get(), "/two"));
  EXPECT_THAT(b, HasSubstr("backend=steady status=200 path=/two"));
  ASSERT_OK(WaitCounter(*n1_, "l7_upstreams_reused", 1));  // reported each second
  EXPECT_EQ(ProxyCounter(*n1_, "l7_upstreams_reused"), 1u);
  // Seen from the server's pod: one established connection on its port,
  // from the client pod's address (transparent), while both client
  // connections are open.
  ASSERT_OK_AND_ASSIGN(
      std::string ss,
      RunInPod(*n1_, *local_, {"ss", "-Htn", "state", "established", "( sport = :8081 )"}));
  EXPECT_EQ(std::count(ss.begin(), ss.end(), '\n'), 1) << ss;
  EXPECT_THAT(ss, HasSubstr(client_->ip)) << ss;
  // Both requests reached the server, each once.
  const std::string log = Slurp(steady_log_);
  EXPECT_THAT(log, HasSubstr("steady GET /one "));
  EXPECT_THAT(log, HasSubstr("steady GET /two "));
  // The first client connection still works: it takes a connection again.
  ASSERT_OK_AND_ASSIGN(std::string c, GetOn(first.get(), "/three"));
  EXPECT_THAT(c, HasSubstr("backend=steady status=200 path=/three"));
}

// Node 1 runs --mtls=permissive, node 2 --mtls=off (no proxy there): a
// service balanced per request whose endpoint is node 2's pod. No tunnel
// reaches it and no proxy there would judge the request; relayed in
// plaintext from node 1's address, node 2's guard would not judge it
// either (the kernel does not police a connection to an L7-balanced
// service: the proxy does). So each attempt is a connect failure, never
// a plaintext request.
class L7ServiceToMeshlessNodeTest : public L7ServiceTest {
 protected:
  void SetUp() override {
    n1_more_ = {"--mtls=permissive"};
    n2_more_ = {"--mtls=off"};
    L7ServiceTest::SetUp();
  }
};

TEST_F(L7ServiceToMeshlessNodeTest, AnEndpointOnANodeWithoutAProxyGetsNoPlaintextRequest) {
  constexpr char kFarVip[] = "10.96.0.27";
  for (TestNode* n : {n1_.get(), n2_.get()})
    ASSERT_OK(n->ApplyConfigFile(
        "far.yaml", Service("far", kFarVip, "shunt.dev/l7: http") + Slice("far", *server_, 8080)));
  ASSERT_OK(Eventually("node 1's proxy balances far too", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n1_->AgentStatus());
    if (st["mtls"]["l7_services"] == 6) return absl::OkStatus();
    return absl::UnavailableError(st["mtls"].dump());
  }));
  // The first finds node 2 meshless (its tunnel refused), the others know it.
  const std::string url = absl::StrCat("http://", kFarVip, "/far");
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> answers,
                       Curl({{"GET", url, ""}, {"GET", url, ""}, {"GET", url, ""}}));
  for (const std::string& a : answers) {
    EXPECT_THAT(a, HasSubstr("[502]"));
    EXPECT_THAT(a, HasSubstr("x-shunt-error: upstream-connect-failed"));
  }
  ASSERT_OK(WaitRefusal(*n1_, "l7-grant-needs-tunnel", 2));
  EXPECT_EQ(ProxyCounter(*n1_, "plaintext_to_meshless_node"), 0u);
  EXPECT_THAT(Slurp(remote_log_), Not(HasSubstr("/far"))) << "node 2's pod got a request";
}

}  // namespace
}  // namespace shunt::e2e
