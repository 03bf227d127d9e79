// HTTP/2 through the L7 layer (docs/l7.md): a client that speaks HTTP/2
// with prior knowledge to a pod it may reach only through HTTP routes. Real
// programs on both ends: nghttp, curl and h2load as clients, nginx (http2 on a
// cleartext port) as the server. Each stream is judged on its own: a denied
// one gets 403 on its stream while the connection and the other streams go
// on, nginx sees only allowed requests, over HTTP/2, from the client pod's
// own address; bodies arrive whole; request counts are exact.
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mtls_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// demo/client may GET /allowed* of demo/local; POST is granted to nobody.
constexpr char kReadOnlyGrant[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: h2-api, namespace: demo}
spec:
  matches:
  - {name: read, pathRegex: "/allowed.*", methods: [GET]}
  - {name: write, pathRegex: "/allowed.*", methods: [POST]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-local-h2, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: h2-api, matches: [read]}]
)";

constexpr uint16_t kH2Port = 8002;

class L7Http2Test : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n1_flags_ = {"--mode=enforce", "--metrics-addr=127.0.0.1:0"};
    policy_yaml_ = kReadOnlyGrant;
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string dir = n1_->work_dir();
    www_ = dir + "/www-h2";
    std::filesystem::create_directories(www_);
    std::ofstream(www_ + "/allowed.txt") << "ALLOWED-PAGE\n";
    std::ofstream(www_ + "/denied.txt") << "DENIED-PAGE\n";
    ASSERT_OK(
        Sh(absl::StrCat("head -c 8388608 /dev/urandom > ", www_, "/allowed-big.bin")).status());
    ASSERT_OK(
        Sh(absl::StrCat("head -c 524288 /dev/urandom > ", www_, "/allowed-mid.bin")).status());
    access_log_ = dir + "/nginx-h2-access.log";
    const std::string conf = dir + "/nginx-h2.conf";
    // HTTP/2 on a cleartext port: prior knowledge only, as nginx does it.
    std::ofstream(conf) << "daemon off; worker_processes 1; pid " << dir
                        << "/nginx-h2.pid; error_log " << dir << "/nginx-h2.err;\n"
                        << "events {}\nhttp {\n"
                        << "  log_format h2 '$remote_addr $server_protocol $request_method $uri "
                           "$status';\n"
                        << "  access_log " << access_log_ << " h2;\n"
                        << "  client_body_temp_path " << dir << "; proxy_temp_path " << dir
                        << "; fastcgi_temp_path " << dir << "; uwsgi_temp_path " << dir
                        << "; scgi_temp_path " << dir << ";\n"
                        << "  server { listen " << kH2Port << " http2; root " << www_ << "; } }\n";
    ASSERT_OK_AND_ASSIGN(
        nginx_, n1_->Spawn(*local_, {"nginx", "-c", conf, "-p", dir}, dir + "/nginx-h2.log"));
    ASSERT_OK(Eventually(
        "nginx listens",
        [&]() -> absl::Status {
          SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n1_->PodSocket(*local_, SOCK_STREAM));
          return ConnectTo(s.get(), local_->ip, kH2Port);
        },
        10000));
  }
  void TearDown() override {
    if (nginx_ > 0) KillAndReap(nginx_);
    MtlsMeshTest::TearDown();
  }
  std::string Url(const std::string& path) const {
    return absl::StrCat("http://", local_->ip, ":", kH2Port, path);
  }
  // Lines of nginx's access log that contain `what`.
  int Logged(const std::string& what) const {
    int n = 0;
    for (absl::string_view line : absl::StrSplit(Slurp(access_log_), '\n'))
      if (absl::StrContains(line, what)) ++n;
    return n;
  }

  struct H2Answer {
    std::string status, denied;
  };
  // What `nghttp -v` printed, by request path: each stream's :status and
  // x-shunt-denied.
  static std::map<std::string, H2Answer> ParseNghttp(const std::string& out) {
    std::map<std::string, std::string> path_of;  // stream id -> path
    std::map<std::string, H2Answer> answers;
    std::string sending;
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::StartsWith(line, "[") && line.find("] ") != absl::string_view::npos)
        line = line.substr(line.find("] ") + 2);  // the time stamp
      if (absl::StrContains(line, "send HEADERS frame")) {
        const size_t at = line.find("stream_id=");
        sending = std::string(line.substr(at + 10, line.find('>', at) - at - 10));
      } else if (absl::StartsWith(line, ":path: ") && !sending.empty()) {
        path_of[sending] = std::string(line.substr(7));
        sending.clear();
      } else if (absl::StartsWith(line, "recv (stream_id=")) {
        const std::string id(line.substr(16, line.find(')') - 16));
        const absl::string_view header = line.substr(line.find(')') + 2);
        if (absl::StartsWith(header, ":status: "))
          answers[path_of[id]].status = std::string(header.substr(9));
        if (absl::StartsWith(header, "x-shunt-denied: "))
          answers[path_of[id]].denied = std::string(header.substr(16));
      }
    }
    return answers;
  }
  static int CountOf(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  std::string www_, access_log_;
  pid_t nginx_ = -1;
};

TEST_F(L7Http2Test, EachStreamIsJudgedAndADenialKeepsTheConnection) {
  // nghttp sends its requests at once, as streams of one connection: two
  // allowed, one to a path no route matches. (curl 7.88 cannot send a
  // second request on a reused prior-knowledge connection, with or
  // without the mesh: "Error in the HTTP2 framing layer".)
  ASSERT_OK_AND_ASSIGN(std::string out, RunInPod(*n1_, *client_,
                                                 {"nghttp", "-v", Url("/allowed.txt"),
                                                  Url("/denied.txt"), Url("/allowed.txt?again")}));
  std::map<std::string, H2Answer> answers = ParseNghttp(out);
  ASSERT_EQ(answers.size(), 3u) << out;
  EXPECT_EQ(answers["/allowed.txt"].status, "200") << out;
  EXPECT_EQ(answers["/allowed.txt?again"].status, "200") << out;
  EXPECT_EQ(answers["/denied.txt"].status, "403") << out;
  EXPECT_EQ(answers["/denied.txt"].denied, "no-route-matched") << out;
  EXPECT_EQ(CountOf(out, "ALLOWED-PAGE"), 2) << out;
  EXPECT_EQ(CountOf(out, "DENIED-PAGE"), 0) << out;
  // A route not granted: a POST, on a connection of its own.
  const std::string body = n1_->work_dir() + "/post-body";
  std::ofstream(body) << "hello";
  ASSERT_OK_AND_ASSIGN(out,
                       RunInPod(*n1_, *client_, {"nghttp", "-v", "-d", body, Url("/allowed.txt")}));
  answers = ParseNghttp(out);
  EXPECT_EQ(answers["/allowed.txt"].status, "403") << out;
  EXPECT_EQ(answers["/allowed.txt"].denied, "route-not-granted; route=demo/h2-api#write") << out;

  // nginx: the two allowed GETs, over HTTP/2, from the client's address.
  ASSERT_OK(Eventually("nginx logged both GETs", [&]() -> absl::Status {
    if (Logged("GET /allowed.txt 200") == 2) return absl::OkStatus();
    return absl::UnavailableError(Slurp(access_log_));
  }));
  EXPECT_EQ(Logged(absl::StrCat(client_->ip, " HTTP/2.0 GET /allowed.txt 200")), 2)
      << Slurp(access_log_);
  EXPECT_EQ(Logged("denied.txt"), 0);
  EXPECT_EQ(Logged("POST"), 0);

  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 4));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_http2_connections"), 2u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 2u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "l7") continue;
    ++seen;
    EXPECT_EQ(d["src_identity"], "demo/client");
    EXPECT_EQ(d["dst_identity"], "demo/local");
    EXPECT_EQ(d["dst_port"], kH2Port);
    EXPECT_EQ(d["path"], d["method"] == "POST" ? "/allowed.txt" : "/denied.txt");
  }
  EXPECT_EQ(seen, 2);
}

TEST_F(L7Http2Test, ABigBodyArrivesWholeUnderFlowControl) {
  // 8 MiB through windows of 256 KiB per stream on both legs.
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunInPod(*n1_, *client_,
                                {"sh", "-c",
                                 absl::StrCat("curl -sS --http2-prior-knowledge ",
                                              Url("/allowed-big.bin"), " | sha256sum")}));
  ASSERT_OK_AND_ASSIGN(std::string want,
                       Sh(absl::StrCat("sha256sum < ", www_, "/allowed-big.bin")));
  EXPECT_EQ(out.substr(0, 64), want.substr(0, 64));
}

TEST_F(L7Http2Test, ManyConcurrentStreamsAreEachCountedOnce) {
  // h2load: 2 connections, up to 20 streams at once on each, 300 requests;
  // every third one to a path no route grants (h2load counts a 4xx as
  // "failed": 100 of them, and no error).
  const std::string urls =
      absl::StrCat(Url("/allowed.txt"), " ", Url("/allowed.txt"), " ", Url("/denied.txt"));
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_, {"sh", "-c", absl::StrCat("h2load -n 300 -c 2 -m 20 ", urls)},
               60000));
  EXPECT_THAT(out,
              HasSubstr("300 total, 300 started, 300 done, 200 succeeded, 100 failed, 0 errored"))
      << out;
  EXPECT_THAT(out, HasSubstr("status codes: 200 2xx, 0 3xx, 100 4xx, 0 5xx")) << out;
  ASSERT_OK(Eventually("nginx logged 200 GETs", [&]() -> absl::Status {
    if (Logged("HTTP/2.0 GET /allowed.txt 200") == 200) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(Logged("GET"), " logged"));
  }));
  EXPECT_EQ(Logged("denied.txt"), 0);
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 300));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests"), 300u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 100u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_http2_connections"), 2u);
}

// Slow readers on many streams of one connection (64 KiB stream windows,
// 1 MiB for the connection, on the client's side): responses end upstream
// while the proxy still holds their last bytes for the client. Each of
// those bytes is given back to the upstream connection's window as it
// lets go, so the one upstream connection all these streams share never
// runs dry.
TEST_F(L7Http2Test, SlowReadersOnManyStreamsNeverStallTheSharedUpstreamConnection) {
  ASSERT_OK_AND_ASSIGN(std::string out, RunInPod(*n1_, *client_,
                                                 {"h2load", "-n", "60", "-c", "1", "-m", "10", "-w",
                                                  "16", "-W", "20", Url("/allowed-mid.bin")},
                                                 60000));
  EXPECT_THAT(out, HasSubstr("60 total, 60 started, 60 done, 60 succeeded")) << out;
  EXPECT_EQ(Logged("GET /allowed-mid.bin 200"), 60);
}

}  // namespace
}  // namespace shunt::e2e
