// HTTP/1.1 and HTTP/2 across the L7 layer (docs/l7.md "HTTP/1.1 and HTTP/2
// across", issue 17 item 5): a pod's client speaks one version, the server
// pod only the other, and its Service port says which (appProtocol). Real
// programs on both ends: curl (HTTP/1.1) to nginx listening for HTTP/2
// only (kubernetes.io/h2c), and nghttp and h2load (HTTP/2 prior knowledge)
// to Python's http.server speaking HTTP/1.1 only (http). Each request is
// judged as ever (a denied one gets 403 in the client's own version), the
// server logs each allowed one in its own version from the client pod's
// address, and bodies arrive whole both ways.
#include <sys/socket.h>

#include <filesystem>
#include <fstream>

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

constexpr uint16_t kMappingH2Port = 8002;  // nginx, HTTP/2 only
constexpr uint16_t kMappingH1Port = 8003;  // l7_backend.py, HTTP/1.1 only

// demo/client may GET, POST and PUT /allowed* of demo/local, nothing else;
// local's two ports are behind Services that say what each speaks.
std::string MappingObjects(const std::string& local_ip) {
  return absl::StrCat(R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: mapped-api, namespace: demo}
spec:
  matches:
  - {name: use, pathRegex: "/allowed.*", methods: [GET, POST, PUT]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-uses-local, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: mapped-api, matches: [use]}]
---
apiVersion: v1
kind: Service
metadata: {name: h2only, namespace: demo}
spec:
  clusterIP: 10.96.0.52
  ports: [{name: grpc, port: 80, targetPort: 8002, appProtocol: kubernetes.io/h2c}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: h2only-1
  namespace: demo
  labels: {kubernetes.io/service-name: h2only}
addressType: IPv4
ports: [{name: grpc, port: 8002, protocol: TCP, appProtocol: kubernetes.io/h2c}]
endpoints:
- addresses: [")",
                      local_ip, R"("]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: local, namespace: demo}
---
apiVersion: v1
kind: Service
metadata: {name: h1only, namespace: demo}
spec:
  clusterIP: 10.96.0.53
  ports: [{name: http, port: 80, targetPort: 8003, appProtocol: http}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: h1only-1
  namespace: demo
  labels: {kubernetes.io/service-name: h1only}
addressType: IPv4
ports: [{name: http, port: 8003, protocol: TCP, appProtocol: http}]
endpoints:
- addresses: [")",
                      local_ip, R"("]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: local, namespace: demo}
)");
}

absl::StatusOr<std::string> MappingSha256(const std::string& path) {
  SHUNT_ASSIGN_OR_RETURN(std::string out, Sh("sha256sum " + path));
  return out.substr(0, out.find(' '));
}

int MappingCount(absl::string_view text, absl::string_view what) {
  int n = 0;
  for (size_t at = text.find(what); at != absl::string_view::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

class L7HttpMappingTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n1_flags_ = {"--mode=enforce"};
    // The pods' addresses are known once they exist: the objects are
    // written after the base's SetUp, and the agents pick them up.
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_OK(n1_->WriteConfigFile("mapping.yaml", MappingObjects(local_->ip)));
    ASSERT_OK(n2_->WriteConfigFile("mapping.yaml", MappingObjects(local_->ip)));
    const std::string dir = n1_->work_dir();
    www_ = dir + "/www-mapped";
    std::filesystem::create_directories(www_);
    std::ofstream(www_ + "/allowed.txt") << "ALLOWED-PAGE\n";
    std::ofstream(www_ + "/denied.txt") << "DENIED-PAGE\n";
    ASSERT_OK(
        Sh(absl::StrCat("head -c 8388608 /dev/urandom > ", www_, "/allowed-big.bin")).status());
    nginx_log_ = dir + "/nginx-mapped-access.log";
    const std::string conf = dir + "/nginx-mapped.conf";
    // HTTP/2 on a cleartext port: prior knowledge only; PUT writes files.
    std::ofstream(conf) << "daemon off; user root root; worker_processes 1; pid " << dir
                        << "/nginx-mapped.pid; error_log " << dir << "/nginx-mapped.err;\n"
                        << "events {}\nhttp {\n"
                        << "  log_format m '$remote_addr $server_protocol $request_method $uri "
                           "$status';\n"
                        << "  access_log " << nginx_log_ << " m;\n"
                        << "  client_body_temp_path " << dir << "; proxy_temp_path " << dir
                        << "; fastcgi_temp_path " << dir << "; uwsgi_temp_path " << dir
                        << "; scgi_temp_path " << dir << ";\n"
                        << "  client_max_body_size 64m;\n"
                        << "  server { listen " << kMappingH2Port << " http2; root " << www_
                        << "; location /allowed-up { dav_methods PUT; } } }\n";
    ASSERT_OK_AND_ASSIGN(
        nginx_, n1_->Spawn(*local_, {"nginx", "-c", conf, "-p", dir}, dir + "/nginx-mapped.log"));
    backend_log_ = dir + "/h1-backend.log";
    ASSERT_OK(n1_->Spawn(*local_,
                         {"/usr/bin/python3", SHUNT_E2E_TESTDATA "/l7_backend.py", "--name",
                          "h1only", "--port", absl::StrCat(kMappingH1Port)},
                         backend_log_)
                  .status());
    for (uint16_t port : {kMappingH2Port, kMappingH1Port}) {
      ASSERT_OK(Eventually(
          absl::StrCat("port ", port, " listens"),
          [&]() -> absl::Status {
            SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n1_->PodSocket(*local_, SOCK_STREAM));
            return ConnectTo(s.get(), local_->ip, port);
          },
          10000));
    }
    // The proxy knows what each port speaks once the agent sent it the
    // Services: a denied request answered in the client's version says
    // the L7 layer judges; the mapping is checked by the tests.
    ASSERT_OK(Eventually("the proxy knows what the ports speak", [&]() -> absl::Status {
      SHUNT_ASSIGN_OR_RETURN(nlohmann::json st, n1_->AgentStatus());
      const nlohmann::json want = {{absl::StrCat(local_->ip, ":", kMappingH2Port), "h2c"},
                                   {absl::StrCat(local_->ip, ":", kMappingH1Port), "http1"}};
      if (st["mtls"]["upstream_http"] != want) return absl::UnavailableError(st["mtls"].dump());
      return absl::OkStatus();
    }));
  }
  void TearDown() override {
    if (nginx_ > 0) KillAndReap(nginx_);
    MtlsMeshTest::TearDown();
  }
  std::string Url(uint16_t port, const std::string& path) const {
    return absl::StrCat("http://", local_->ip, ":", port, path);
  }

  std::string www_, nginx_log_, backend_log_;
  pid_t nginx_ = -1;
};

TEST_F(L7HttpMappingTest, AnHttp11ClientReachesAServerThatSpeaksOnlyHttp2) {
  // Three requests on one HTTP/1.1 connection (num_connects 1, then 0):
  // allowed, denied, allowed.
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"curl", "-s", "--http1.1", "-w", "\n%{http_code} %{http_version} %{num_connects}\n",
                Url(kMappingH2Port, "/allowed.txt"), Url(kMappingH2Port, "/denied.txt"),
                Url(kMappingH2Port, "/allowed.txt?again")}));
  EXPECT_EQ(MappingCount(out, "ALLOWED-PAGE\n\n200 1.1 "), 2) << out;
  EXPECT_THAT(out, HasSubstr("200 1.1 1\n")) << out;
  EXPECT_THAT(out, HasSubstr("403 1.1 0\n")) << out;
  EXPECT_THAT(out, HasSubstr("200 1.1 0\n")) << out;
  EXPECT_THAT(out, Not(HasSubstr("DENIED-PAGE"))) << out;
  // nginx saw them over HTTP/2, from the client pod's own address.
  ASSERT_OK(Eventually("nginx logged both GETs", [&]() -> absl::Status {
    if (MappingCount(Slurp(nginx_log_), "GET /allowed.txt 200") == 2) return absl::OkStatus();
    return absl::UnavailableError(Slurp(nginx_log_));
  }));
  EXPECT_EQ(
      MappingCount(Slurp(nginx_log_), absl::StrCat(client_->ip, " HTTP/2.0 GET /allowed.txt 200")),
      2)
      << Slurp(nginx_log_);
  EXPECT_EQ(MappingCount(Slurp(nginx_log_), "denied"), 0);

  // 8 MiB down, framed chunked or by length for HTTP/1.1 as nginx's
  // HTTP/2 answer says; 4 MiB up in a chunked body, written by nginx.
  const std::string down = n1_->work_dir() + "/mapped-down.bin";
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"curl", "-s", "--http1.1", "-o", down, "-w", "%{http_code}",
                                      Url(kMappingH2Port, "/allowed-big.bin")}));
  EXPECT_EQ(out, "200");
  ASSERT_OK_AND_ASSIGN(std::string want, MappingSha256(www_ + "/allowed-big.bin"));
  ASSERT_OK_AND_ASSIGN(std::string got, MappingSha256(down));
  EXPECT_EQ(got, want);
  const std::string up = n1_->work_dir() + "/mapped-up.bin";
  ASSERT_OK(Sh(absl::StrCat("head -c 4194304 /dev/urandom > ", up)).status());
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"curl", "-s", "--http1.1", "-o", "/dev/null", "-w",
                                      "%{http_code}", "-H", "Transfer-Encoding: chunked", "-T", up,
                                      Url(kMappingH2Port, "/allowed-up.bin")}));
  EXPECT_EQ(out, "201");
  ASSERT_OK_AND_ASSIGN(want, MappingSha256(up));
  ASSERT_OK_AND_ASSIGN(got, MappingSha256(www_ + "/allowed-up.bin"));
  EXPECT_EQ(got, want);
  EXPECT_EQ(MappingCount(Slurp(nginx_log_), absl::StrCat(client_->ip, " HTTP/2.0 PUT")), 1)
      << Slurp(nginx_log_);
  // (The proxy reports its counters each second: waited for.)
  ASSERT_OK(WaitCounter(*n1_, "l7_connections_mapped", 3));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests_denied", 1));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 1u);

  // curl --http2 to an http:// URL offers Upgrade: h2c: declined (as a
  // server that does not take it declines), answered over HTTP/1.1.
  ASSERT_OK_AND_ASSIGN(out,
                       RunInPod(*n1_, *client_,
                                {"curl", "-s", "--http2", "-w", "\n%{http_code} %{http_version}",
                                 Url(kMappingH2Port, "/allowed.txt")}));
  EXPECT_EQ(out, "ALLOWED-PAGE\n\n200 1.1");
  // A client that half-closes once its request is sent still gets the answer.
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"/usr/bin/python3", "-c",
                     absl::StrCat("import socket\ns = socket.create_connection(('", local_->ip,
                                  "', ", kMappingH2Port,
                                  "))\ns.sendall(b'GET /allowed.txt HTTP/1.1\\r\\nHost: "
                                  "local\\r\\n\\r\\n')\ns.shutdown(socket.SHUT_WR)\n"
                                  "print(s.makefile('rb').read().decode())")}));
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 200 OK")) << out;
  EXPECT_THAT(out, HasSubstr("ALLOWED-PAGE")) << out;
  // A request smuggling shape: 400 from the proxy, the connection closed,
  // and counted as a request the proxy answered (as without the mapping).
  ASSERT_OK_AND_ASSIGN(
      out, RunInPod(*n1_, *client_,
                    {"/usr/bin/python3", "-c",
                     absl::StrCat("import socket\ns = socket.create_connection(('", local_->ip,
                                  "', ", kMappingH2Port,
                                  "))\ns.sendall(b'POST /allowed.txt HTTP/1.1\\r\\nHost: "
                                  "local\\r\\nContent-Length: 5\\r\\nTransfer-Encoding: "
                                  "chunked\\r\\n\\r\\n0\\r\\n\\r\\n')\n"
                                  "print(s.makefile('rb').read().decode())")}));
  EXPECT_THAT(out, HasSubstr("HTTP/1.1 400 Bad Request")) << out;
  ASSERT_OK(WaitCounter(*n1_, "l7_requests_answered_by_proxy", 1));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_answered_by_proxy"), 1u);
}

TEST_F(L7HttpMappingTest, AnHttp2ClientReachesAServerThatSpeaksOnlyHttp11) {
  // Three streams at once on one HTTP/2 connection, and a POST with a body.
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"nghttp", "-v", Url(kMappingH1Port, "/allowed.txt"),
                Url(kMappingH1Port, "/denied.txt"), Url(kMappingH1Port, "/allowed.txt?again")}));
  EXPECT_EQ(MappingCount(out, ":status: 200"), 2) << out;
  EXPECT_EQ(MappingCount(out, ":status: 403"), 1) << out;
  EXPECT_EQ(MappingCount(out, "backend=h1only status=200"), 2) << out;
  const std::string body = n1_->work_dir() + "/mapped-post.bin";
  ASSERT_OK(Sh(absl::StrCat("head -c 40000 /dev/urandom > ", body)).status());
  ASSERT_OK_AND_ASSIGN(std::string want, MappingSha256(body));
  ASSERT_OK_AND_ASSIGN(
      out,
      RunInPod(*n1_, *client_, {"nghttp", "-v", "-d", body, Url(kMappingH1Port, "/allowed-post")}));
  EXPECT_THAT(out, HasSubstr(":status: 200")) << out;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("x-body-sha256: ", want))) << out;
  EXPECT_THAT(out, HasSubstr("x-body-bytes: 40000")) << out;

  // 40 requests, 8 at a time, on one connection: each an HTTP/1.1
  // request at the server, on connections kept alive between them.
  ASSERT_OK_AND_ASSIGN(out, RunInPod(*n1_, *client_,
                                     {"h2load", "-n", "40", "-c", "1", "-m", "8",
                                      Url(kMappingH1Port, "/allowed-load")}));
  EXPECT_THAT(out, HasSubstr("40 succeeded")) << out;
  EXPECT_THAT(out, HasSubstr("status codes: 40 2xx")) << out;
  ASSERT_OK(Eventually("the backend logged every request", [&]() -> absl::Status {
    if (MappingCount(Slurp(backend_log_), "GET /allowed-load ") == 40) return absl::OkStatus();
    return absl::UnavailableError(Slurp(backend_log_));
  }));
  const std::string log = Slurp(backend_log_);
  EXPECT_EQ(MappingCount(log, absl::StrCat("h1only GET /allowed-load ", client_->ip)), 40) << log;
  EXPECT_EQ(MappingCount(log, absl::StrCat("h1only POST /allowed-post ", client_->ip)), 1) << log;
  EXPECT_EQ(MappingCount(log, "/denied"), 0) << log;
  ASSERT_OK(WaitCounter(*n1_, "l7_connections_mapped", 3));  // (reported each second)
}

}  // namespace
}  // namespace shunt::e2e
