// Retries of HTTP/2 requests through the L7 layer (docs/l7.md, "HTTP/2"):
// real clients (h2load, curl) against a real HTTP/2 server
// (testdata/h2_backend.py on python3-h2) that fails or refuses streams on
// purpose. A stream the server refused (REFUSED_STREAM: not processed) is
// sent again once whatever its method, if it has no body; a service's
// requests get no budgeted retries over HTTP/2 yet.
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mtls_fixture.h"
#include "test/e2e/harness/service_yaml.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;

constexpr char kFlakyVip[] = "10.96.0.40";  // retries: 2; local:8090 fails every other

// demo/client may send anything to demo/local, judged per request.
constexpr char kAnyRequest[] = R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: h2-any, namespace: demo}
spec:
  matches:
  - {name: any, pathRegex: "/.*"}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-local-h2, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: h2-any, matches: [any]}]
)";

class L7Http2RetryTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    n1_flags_ = {"--mode=enforce"};
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string services = Service("flaky-h2", kFlakyVip, "shunt.dev/retries: \"2\"") +
                                 Slice("flaky-h2", *local_, 8090);
    for (TestNode* n : {n1_.get(), n2_.get()})
      ASSERT_OK(n->ApplyConfigFile("services.yaml", std::string(kAnyRequest) + services));
    flaky_log_ = n1_->work_dir() + "/flaky-h2.log";
    shy_log_ = n1_->work_dir() + "/shy-h2.log";
    ASSERT_OK(StartBackend("flaky", 8090, "--fail-every", flaky_log_));
    ASSERT_OK(StartBackend("shy", 8091, "--refuse-every", shy_log_));
    ASSERT_OK(Eventually("node 1's proxy balances the service", [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n1_->AgentStatus());
      const auto& s = st["mtls"]["l7_services"];
      if (s.is_number() && s.get<int>() == 1) return absl::OkStatus();
      return absl::UnavailableError(st["mtls"].dump());
    }));
  }

  absl::Status StartBackend(const std::string& name, int port, const std::string& misbehave,
                            const std::string& log) {
    SHUNT_RETURN_IF_ERROR(
        n1_->Spawn(*local_,
                   {"/usr/bin/python3", SHUNT_E2E_TESTDATA "/h2_backend.py", "--name", name,
                    "--port", std::to_string(port), misbehave, "2"},
                   log)
            .status());
    return Eventually(absl::StrCat(name, " listens"), [&]() -> absl::Status {
      if (!absl::StrContains(Slurp(log), "listening")) return absl::UnavailableError("not yet");
      return absl::OkStatus();
    });
  }
  static int CountLines(const std::string& log, const std::string& what) {
    int n = 0;
    for (absl::string_view line : absl::StrSplit(log, '\n'))
      if (absl::StrContains(line, what)) ++n;
    return n;
  }
  // Waits until `log` has `n` lines with `what`; fails with the log if never.
  static absl::Status WaitLines(const std::string& log, const std::string& what, int n) {
    return Eventually(absl::StrCat(n, " x '", what, "'"), [&]() -> absl::Status {
      const std::string text = Slurp(log);
      if (CountLines(text, what) >= n) return absl::OkStatus();
      return absl::UnavailableError(text);
    });
  }

  std::string flaky_log_, shy_log_;
};

// A service's requests over HTTP/2 get no budgeted retries yet: its router
// keeps one request's state per connection, and a retry would be picked and
// judged on another stream's (docs/l7.md, "HTTP/2 retries"). The client
// sees the server's 503s; nothing is sent twice.
TEST_F(L7Http2RetryTest, AServicesHttp2RequestsAreNotRetriedYetAndOnesWithABodyNever) {
  const std::string url = absl::StrCat("http://", kFlakyVip, ":80/get");
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunInPod(*n1_, *client_, {"h2load", "-n", "10", "-c", "1", "-m", "1", url}));
  EXPECT_THAT(out, HasSubstr("status codes: 5 2xx, 0 3xx, 0 4xx, 5 5xx")) << out;
  ASSERT_OK(WaitLines(flaky_log_, "flaky GET /get ", 10));
  const std::string log = Slurp(flaky_log_);
  EXPECT_EQ(CountLines(log, "flaky GET /get "), 10) << log;
  // From the client pod's own address, not the proxy's.
  EXPECT_THAT(log, HasSubstr(absl::StrCat(" ", client_->ip, " ")));
  // POST with a body: each sent once.
  const std::string body = n1_->work_dir() + "/post-body";
  std::ofstream(body) << "payload";
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"h2load", "-n", "10", "-c", "1", "-m", "1", "-d", body,
                                      absl::StrCat("http://", kFlakyVip, ":80/post")}));
  EXPECT_THAT(out, HasSubstr("status codes: 5 2xx, 0 3xx, 0 4xx, 5 5xx")) << out;
  ASSERT_OK(WaitLines(flaky_log_, "flaky POST /post ", 10));
  EXPECT_EQ(CountLines(Slurp(flaky_log_), "flaky POST /post "), 10);
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 20));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 0u);
  // The request metrics count each once, none retried.
  ASSERT_OK_AND_ASSIGN(nlohmann::json routes, ShuntctlJson(*n1_, "stat route --window 60s"));
  uint64_t retries = 0, requests = 0;
  for (const auto& r : routes["rows"]) {
    retries += r.value("retries", uint64_t{0});
    requests += r.value("requests", uint64_t{0});
  }
  EXPECT_EQ(retries, 0u) << routes.dump();
  EXPECT_EQ(requests, 20u) << routes.dump();
}

TEST_F(L7Http2RetryTest, ARefusedStreamIsSentAgainOnceWhateverItsMethod) {
  // Straight to the pod (no service, no retries configured): each GET is
  // refused once, then served.
  const std::string base = absl::StrCat("http://", local_->ip, ":8091");
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_, {"h2load", "-n", "6", "-c", "1", "-m", "1", base + "/get"}));
  EXPECT_THAT(out, HasSubstr("status codes: 6 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  ASSERT_OK(WaitLines(shy_log_, "shy GET /get ", 12));
  EXPECT_EQ(CountLines(Slurp(shy_log_), " refused"), 6);
  // A POST without a body too: the server said it did nothing.
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-w",
                                      "[%{http_code}]", base + "/bodiless"}));
  EXPECT_THAT(out, HasSubstr("[200]"));
  ASSERT_OK(WaitLines(shy_log_, "shy POST /bodiless ", 2));
  // One with a body is not kept to send again: the refusal is a 502.
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"curl", "-sS", "--http2-prior-knowledge", "-d", "x=1", "-D", "-", "-o",
                     "/dev/null", "-w", "[%{http_code}]", base + "/with-body"}));
  EXPECT_THAT(out, HasSubstr("[502]"));
  EXPECT_THAT(out, HasSubstr("x-shunt-error: upstream-refused-stream"));
  ASSERT_OK(WaitLines(shy_log_, "shy POST /with-body ", 1));
  EXPECT_EQ(CountLines(Slurp(shy_log_), "shy POST /with-body "), 1);
}

}  // namespace
}  // namespace shunt::e2e
