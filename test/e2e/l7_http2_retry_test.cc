// Retries of HTTP/2 requests through the L7 layer (docs/l7.md, "HTTP/2"):
// real clients (h2load, curl) against a real HTTP/2 server
// (testdata/h2_backend.py on python3-h2) that fails or refuses streams on
// purpose. An idempotent request is sent again within the service's
// retries, with its body (kept up to 64 KiB), each stream on its own
// request even when many are in flight on one connection; a POST never
// is; a stream the server refused (REFUSED_STREAM: not processed) is sent
// again once whatever its method, its body too.
#include <fstream>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
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
// retries: 2; /canary/* split to ab-h2-canary (local:8093), the rest to
// local:8092; both fail the first request for each path.
constexpr char kAbVip[] = "10.96.0.41";

constexpr char kCanarySplit[] = R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: canary-paths, namespace: demo}
spec:
  matches:
  - {name: canary, pathRegex: "/canary/.*"}
---
apiVersion: split.smi-spec.io/v1alpha4
kind: TrafficSplit
metadata: {name: ab-h2, namespace: demo}
spec:
  service: ab-h2
  matches: [{kind: HTTPRouteGroup, name: canary-paths}]
  backends:
  - {service: ab-h2-canary, weight: 100}
)";

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
    n1_flags_ = {"--mode=enforce", "--l7-connect-timeout=500ms", "--l7-stream-idle-timeout=1s"};
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string services =
        Service("flaky-h2", kFlakyVip, "shunt.dev/retries: \"2\"") +
        Slice("flaky-h2", *local_, 8090) + Service("ab-h2", kAbVip, "shunt.dev/retries: \"2\"") +
        Slice("ab-h2", *local_, 8092) + Service("ab-h2-canary", "10.96.0.42", "") +
        Slice("ab-h2-canary", *local_, 8093);
    for (TestNode* n : {n1_.get(), n2_.get()})
      ASSERT_OK(
          n->ApplyConfigFile("services.yaml", std::string(kAnyRequest) + kCanarySplit + services));
    flaky_log_ = n1_->work_dir() + "/flaky-h2.log";
    shy_log_ = n1_->work_dir() + "/shy-h2.log";
    stable_log_ = n1_->work_dir() + "/stable-h2.log";
    canary_log_ = n1_->work_dir() + "/canary-h2.log";
    ASSERT_OK(StartBackend("flaky", 8090, {"--fail-every", "2"}, flaky_log_));
    ASSERT_OK(StartBackend("shy", 8091, {"--refuse-every", "2"}, shy_log_));
    ASSERT_OK(StartBackend("stable", 8092, {"--fail-first"}, stable_log_));
    ASSERT_OK(StartBackend("canary", 8093, {"--fail-first"}, canary_log_));
    ASSERT_OK(Eventually("node 1's proxy balances the services", [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n1_->AgentStatus());
      const auto& s = st["mtls"]["l7_services"];
      // flaky-h2, ab-h2 (its canary leaf is no L7 service of its own)
      if (s.is_number() && s.get<int>() == 2) return absl::OkStatus();
      return absl::UnavailableError(st["mtls"].dump());
    }));
  }

  absl::Status StartBackend(const std::string& name, int port,
                            const std::vector<std::string>& misbehave, const std::string& log) {
    std::vector<std::string> argv = {"/usr/bin/python3", SHUNT_E2E_TESTDATA "/h2_backend.py",
                                     "--name",           name,
                                     "--port",           std::to_string(port)};
    argv.insert(argv.end(), misbehave.begin(), misbehave.end());
    SHUNT_RETURN_IF_ERROR(n1_->Spawn(*local_, argv, log).status());
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

  std::string flaky_log_, shy_log_, stable_log_, canary_log_;
};

TEST_F(L7Http2RetryTest, IdempotentRequestsAreRetriedWithTheirBodiesAndPostsNever) {
  // Every other request fails (the first included): each GET fails once
  // and succeeds on its retry; the client sees only 200s.
  const std::string url = absl::StrCat("http://", kFlakyVip, ":80/get");
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunInPod(*n1_, *client_, {"h2load", "-n", "10", "-c", "1", "-m", "1", url}));
  EXPECT_THAT(out, HasSubstr("10 succeeded, 0 failed, 0 errored")) << out;
  EXPECT_THAT(out, HasSubstr("status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  ASSERT_OK(WaitLines(flaky_log_, "flaky GET /get ", 20));
  const std::string log = Slurp(flaky_log_);
  EXPECT_EQ(CountLines(log, "flaky GET /get "), 20) << log;
  EXPECT_EQ(CountLines(log, " failed"), 10) << log;
  // From the client pod's own address, not the proxy's.
  EXPECT_THAT(log, HasSubstr(absl::StrCat(" ", client_->ip, " ")));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 10));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 10u);

  // POST with a body: never sent again; half of them fail, as the server
  // answered them.
  const std::string body = n1_->work_dir() + "/post-body";
  std::ofstream(body) << "payload";
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"h2load", "-n", "10", "-c", "1", "-m", "1", "-d", body,
                                      absl::StrCat("http://", kFlakyVip, ":80/post")}));
  EXPECT_THAT(out, HasSubstr("status codes: 5 2xx, 0 3xx, 0 4xx, 5 5xx")) << out;
  ASSERT_OK(WaitLines(flaky_log_, "flaky POST /post ", 10));
  EXPECT_EQ(CountLines(Slurp(flaky_log_), "flaky POST /post "), 10);
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 20));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 10u);

  // PUT with a body (idempotent): each failed attempt is sent again with
  // its body, which arrives whole both times.
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"h2load", "-n", "10", "-c", "1", "-m", "1", "-d", body, "-H", ":method: PUT",
                     absl::StrCat("http://", kFlakyVip, ":80/put")}));
  EXPECT_THAT(out, HasSubstr("status codes: 10 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  ASSERT_OK(WaitLines(flaky_log_, "flaky PUT /put ", 20));
  const std::string put_log = Slurp(flaky_log_);
  EXPECT_EQ(CountLines(put_log, "flaky PUT /put "), 20) << put_log;
  // sha256("payload")
  EXPECT_EQ(CountLines(put_log,
                       "body bytes=7 "
                       "sha256=239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5 "
                       "path=/put"),
            20)
      << put_log;
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 30));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 20u);
  // Each GET's retry is in its request metrics.
  ASSERT_OK_AND_ASSIGN(nlohmann::json routes, ShuntctlJson(*n1_, "stat route --window 60s"));
  uint64_t retries = 0, requests = 0;
  for (const auto& r : routes["rows"]) {
    retries += r.value("retries", uint64_t{0});
    requests += r.value("requests", uint64_t{0});
  }
  EXPECT_EQ(retries, 20u) << routes.dump();
  EXPECT_EQ(requests, 30u) << routes.dump();
}

// Twenty requests in flight together on one connection, half of them
// split to the canary by path; every first attempt fails. Each retry is
// picked for its own stream's request: a /canary/ path goes again to the
// canary and nowhere else, a plain one to the stable backend — the router
// judged last on some other stream's request must not decide it.
TEST_F(L7Http2RetryTest, InterleavedStreamsAreEachRetriedOnTheirOwnRequest) {
  std::vector<std::string> argv = {"h2load", "-n", "20", "-c", "1", "-m", "20"};
  for (int i = 0; i < 10; ++i) {
    argv.push_back(absl::StrCat("http://", kAbVip, ":80/canary/", i));
    argv.push_back(absl::StrCat("http://", kAbVip, ":80/stable/", i));
  }
  ASSERT_OK_AND_ASSIGN(std::string out, RunInPod(*n1_, *client_, argv));
  EXPECT_THAT(out, HasSubstr("20 succeeded, 0 failed, 0 errored")) << out;
  EXPECT_THAT(out, HasSubstr("status codes: 20 2xx, 0 3xx, 0 4xx, 0 5xx")) << out;
  ASSERT_OK(WaitLines(canary_log_, "canary GET ", 20));
  ASSERT_OK(WaitLines(stable_log_, "stable GET ", 20));
  const std::string canary = Slurp(canary_log_), stable = Slurp(stable_log_);
  for (int i = 0; i < 10; ++i) {
    // Each path: its first attempt failed, its retry served, both at the
    // backend its own path is split to.
    const std::string c = absl::StrCat(" /canary/", i, " "), s = absl::StrCat(" /stable/", i, " ");
    EXPECT_EQ(CountLines(canary, c), 2) << canary;
    EXPECT_EQ(CountLines(stable, s), 2) << stable;
    EXPECT_EQ(CountLines(canary, s), 0) << canary;
    EXPECT_EQ(CountLines(stable, c), 0) << stable;
  }
  EXPECT_EQ(CountLines(canary, " failed"), 10) << canary;
  EXPECT_EQ(CountLines(stable, " failed"), 10) << stable;
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 20));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_retries"), 20u);
  // Each leaf's balancer was told of each of its own attempts' ends:
  // nothing is left outstanding on either endpoint. (The threads'
  // balancer snapshots may reach the agent a report after the counters:
  // waited for; a leak stays and fails.)
  const std::map<std::string, int> none = {{"demo/ab-h2", 0}, {"demo/ab-h2-canary", 0}};
  ASSERT_OK(Eventually("both leaves' balancers with nothing outstanding", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(nlohmann::json lb, ShuntctlJson(*n1_, "lb explain demo/ab-h2"));
    std::map<std::string, int> outstanding;  // leaf -> requests in flight
    for (const auto& t : lb["services"][0]["per_request"])
      for (const auto& l : t["leaves"])
        for (const auto& e : l["endpoints"])
          outstanding[l["leaf"].get<std::string>()] += e["outstanding"].get<int>();
    if (outstanding != none) return absl::UnavailableError(lb.dump());
    return absl::OkStatus();
  }));
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
  // One with a body (40 KiB: three DATA frames) too: its body was kept and
  // goes again, whole, on the new stream.
  const std::string mid = n1_->work_dir() + "/body-40k";
  ASSERT_OK(Sh(absl::StrCat("head -c 40960 /dev/urandom > ", mid)).status());
  ASSERT_OK_AND_ASSIGN(std::string mid_sha, Sh("sha256sum " + mid));
  mid_sha = mid_sha.substr(0, mid_sha.find(' '));
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@" + mid, "-D",
                     "-", "-o", "/dev/null", "-w", "[%{http_code}]", base + "/with-body"}));
  EXPECT_THAT(out, HasSubstr("[200]"));
  EXPECT_THAT(out, HasSubstr("x-body-sha256: " + mid_sha));
  ASSERT_OK(WaitLines(shy_log_, "shy POST /with-body ", 2));
  EXPECT_EQ(CountLines(Slurp(shy_log_), "shy POST /with-body "), 2);
  EXPECT_EQ(CountLines(Slurp(shy_log_),
                       absl::StrCat("body bytes=40960 sha256=", mid_sha, " path=/with-body")),
            1);
  // One bigger than what is kept for a retry (64 KiB), refused once all of
  // it was sent (so never while the proxy still held all it had read): the
  // refusal is a 502.
  const std::string big = n1_->work_dir() + "/body-100k";
  ASSERT_OK(Sh(absl::StrCat("head -c 102400 /dev/urandom > ", big)).status());
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@" + big, "-D",
                     "-", "-o", "/dev/null", "-w", "[%{http_code}]", base + "/too-big"}));
  EXPECT_THAT(out, HasSubstr("[502]"));
  EXPECT_THAT(out, HasSubstr("x-shunt-error: upstream-refused-stream"));
  ASSERT_OK(WaitLines(shy_log_, "shy POST /too-big ", 1));
  EXPECT_EQ(CountLines(Slurp(shy_log_), "shy POST /too-big "), 1);
}

// A pod port that never answers a SYN (testdata/blackhole.py): with
// --l7-connect-timeout=500ms, an HTTP/2 stream and an HTTP/1.1 request to
// it both get 502 upstream-connect-timeout, not the kernel's two minutes.
TEST_F(L7Http2RetryTest, AnEndpointThatNeverAnswersTheHandshakeFailsAfterTheConnectTimeout) {
  const std::string log = n1_->work_dir() + "/blackhole.log";
  ASSERT_OK(n1_->Spawn(*local_,
                       {"/usr/bin/python3", SHUNT_E2E_TESTDATA "/blackhole.py", "--port", "8095"},
                       log)
                .status());
  ASSERT_OK(Eventually("the blackhole listens", [&]() -> absl::Status {
    if (!absl::StrContains(Slurp(log), "listening")) return absl::UnavailableError("not yet");
    return absl::OkStatus();
  }));
  const std::string url = absl::StrCat("http://", local_->ip, ":8095/x");
  for (const char* version : {"--http2-prior-knowledge", "--http1.1"}) {
    ASSERT_OK_AND_ASSIGN(std::string out, RunInPod(*n1_, *client_,
                                                   {"curl", "-s", "-m", "10", version, "-D", "-",
                                                    "-o", "/dev/null", url}));
    EXPECT_THAT(out, HasSubstr(" 502")) << version << "\n" << out;
    EXPECT_THAT(out, HasSubstr("x-shunt-error: upstream-connect-timeout")) << version << "\n"
                                                                           << out;
  }
}

// A client that opens a stream and stalls (its POST's body never comes,
// testdata/h2_stall_client.py) holds it, and the server's stream, only for
// --l7-stream-idle-timeout (1s here): then its stream is reset (CANCEL).
TEST_F(L7Http2RetryTest, AStalledStreamIsResetAfterTheStreamIdleTimeout) {
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"/usr/bin/python3", SHUNT_E2E_TESTDATA "/h2_stall_client.py", "--host", local_->ip,
                "--port", "8090", "--path", "/stall", "--wait", "10"}));
  EXPECT_THAT(out, HasSubstr("reset 8 after ")) << out;  // NGHTTP2_CANCEL
  // The server got the request's head, through the L7 layer.
  ASSERT_OK(WaitLines(flaky_log_, "flaky POST /stall ", 1));
  // Not before the timeout (the sweep runs every half of it).
  double after = 0;
  const size_t at = out.find("after ");
  ASSERT_NE(at, std::string::npos) << out;
  ASSERT_TRUE(
      absl::SimpleAtod(out.substr(at + 6, out.find_first_of(" \n", at + 6) - at - 6), &after))
      << out;
  EXPECT_GE(after, 0.9) << out;
}

}  // namespace
}  // namespace shunt::e2e
