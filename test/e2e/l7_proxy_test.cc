// The L7 layer on one node (docs/l7.md): a TrafficTarget that grants a
// client only HTTP routes sends its connections to the node proxy's L7
// port, where each request is judged. A real client (curl) and a real
// server (python's http.server): allowed requests are served, from the
// client's own address; a denied one gets 403 naming why and the route,
// never reaches the server, and leaves the connection open for the next;
// the denial is in `shuntctl drops`. What is not HTTP is refused.
#include <sys/socket.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "shunt/abi/counters.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/l7_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(L7ProxyTest, EachRequestIsJudgedAndADenialKeepsTheConnection) {
  // Four requests on one connection (curl reuses it across --next): allowed,
  // a path no route matches, a route not granted (POST), allowed again.
  std::vector<std::string> argv = {"curl"};
  for (const auto& [method, path] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/allowed.txt"},
                                                        {"GET", "/denied.txt"},
                                                        {"POST", "/allowed.txt"},
                                                        {"GET", "/allowed.txt"}}) {
    if (argv.size() > 1) argv.push_back("--next");
    for (const std::string& a : {std::string("-sSi"), std::string("-X"), method, std::string("-w"),
                                 std::string("\n[%{http_code} %{num_connects}]\n"), Url(path)})
      argv.push_back(a);
  }
  ASSERT_OK_AND_ASSIGN(std::string out, RunInClient(argv));
  const std::vector<std::string> answers = absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty());
  ASSERT_EQ(answers.size(), 4u) << out;
  EXPECT_THAT(answers[0], HasSubstr("ALLOWED-PAGE\n\n[200 1]"));
  EXPECT_THAT(answers[1], HasSubstr("x-shunt-denied: no-route-matched"));
  EXPECT_THAT(answers[1], HasSubstr("[403 0]"));
  EXPECT_THAT(answers[2],
              HasSubstr("x-shunt-denied: route-not-granted; route=demo/local-api#write"));
  EXPECT_THAT(answers[2], HasSubstr("[403 0]"));
  // The last one still on the first connection: a denial does not close it.
  EXPECT_THAT(answers[3], HasSubstr("ALLOWED-PAGE\n\n[200 0]"));
  EXPECT_THAT(out, Not(HasSubstr("DENIED-PAGE")));

  // The server saw the allowed requests, from the client pod's own
  // address, and nothing else.
  ASSERT_OK(Eventually("the server logged both GETs", [&]() -> absl::Status {
    const std::string log = Slurp(server_log_);
    size_t n = 0;
    for (size_t at = log.find("GET /allowed.txt"); at != std::string::npos;
         at = log.find("GET /allowed.txt", at + 1))
      ++n;
    if (n == 2) return absl::OkStatus();
    return absl::UnavailableError(log);
  }));
  const std::string log = Slurp(server_log_);
  EXPECT_THAT(log, HasSubstr(client_->ip + " - - "));
  EXPECT_THAT(log, Not(HasSubstr("denied.txt")));
  EXPECT_THAT(log, Not(HasSubstr("POST")));

  // shuntctl drops: the two denials, with the request and the route.
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 4));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 2u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "l7") continue;
    ++seen;
    EXPECT_EQ(d["src_identity"], "demo/client");
    EXPECT_EQ(d["dst_identity"], "demo/local");
    EXPECT_EQ(d["src_ip"], client_->ip);
    EXPECT_EQ(d["dst_ip"], local_->ip);
    EXPECT_EQ(d["dst_port"], 8000);
    EXPECT_EQ(d["enforced"], true);
    if (d["method"] == "POST") {
      EXPECT_EQ(d["reason"], "route-not-granted");
      EXPECT_EQ(d["route"], "demo/local-api#write");
      EXPECT_EQ(d["path"], "/allowed.txt");
    } else {
      EXPECT_EQ(d["reason"], "no-route-matched");
      EXPECT_EQ(d["path"], "/denied.txt");
    }
  }
  EXPECT_EQ(seen, 2);
  // /metrics counts each request once, by route and status class, with
  // its latency.
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, n1_->AgentStatus());
  const std::string metrics_addr = st["metrics_addr"].get<std::string>();
  const std::string edge =
      R"(src_identity="demo/client",dst_identity="demo/local",dst_port="8000",route=)";
  std::string metrics;
  ASSERT_OK(Eventually("/metrics has the requests", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(metrics, HttpGetInNode(*n1_, metrics_addr, "/metrics"));
    if (metrics.find("shunt_l7_requests_total{") != std::string::npos) return absl::OkStatus();
    return absl::UnavailableError("no shunt_l7_requests_total yet");
  }));
  // Prometheus's own parser and linter accept the whole page.
  const std::string file = n1_->work_dir() + "/metrics.txt";
  std::ofstream(file) << metrics;
  ASSERT_OK_AND_ASSIGN(std::string lint, Sh(absl::StrCat("promtool check metrics < ", file,
                                                         " 2>&1; echo PROMTOOL_RC=$?")));
  EXPECT_THAT(lint, HasSubstr("PROMTOOL_RC=0")) << lint;
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("shunt_l7_requests_total{", edge,
                                              R"("demo/local-api#read",code_class="2xx"} 2)")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("shunt_l7_requests_total{", edge,
                                              R"("demo/local-api#write",code_class="4xx"} 1)")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("shunt_l7_requests_total{", edge,
                                              R"("",code_class="4xx"} 1)")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("shunt_l7_request_duration_seconds_count{", edge,
                                              R"("demo/local-api#read"} 2)")));
  EXPECT_THAT(metrics, HasSubstr(absl::StrCat("shunt_l7_request_duration_seconds_bucket{", edge,
                                              R"("demo/local-api#read",le="+Inf"} 2)")));

  // One flow for the one connection, path l7, the pods' own addresses, both
  // legs socket to socket; the proxy's leg to the server is not listed again.
  std::vector<nlohmann::json> flows;
  ASSERT_OK(Eventually("the flow closed", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(flows,
                           ShuntctlFlows(*n1_, "--from demo/client --to demo/local --port 8000"));
    for (const auto& f : flows)
      if (f["end"] == "open") return absl::UnavailableError(f.dump());
    if (flows.empty()) {
      auto all = ShuntctlFlows(*n1_, "");
      std::string txt;
      if (all.ok())
        for (const auto& f : *all)
          if (f["server"]["ip"] != f["client"]["ip"]) txt += f.dump() + "\n";
      return absl::NotFoundError("no flow yet; all: " + txt);
    }
    return absl::OkStatus();
  }));
  ASSERT_EQ(flows.size(), 1u) << flows[0].dump();
  EXPECT_EQ(flows[0]["path"], "l7") << flows[0].dump();
  EXPECT_EQ(flows[0]["client"]["ip"], client_->ip);
  EXPECT_EQ(flows[0]["server"]["ip"], local_->ip);
  EXPECT_EQ(flows[0]["verdict"], "l7");
  auto c = n1_->Counters();
  ASSERT_OK(c.status());
  // pod -> proxy and proxy -> pod: four sockets in the sockhash.
  EXPECT_GE((*c)[SHUNT_CTR_SOCK_SHORT_CIRCUITED], 4u);

  // The kernel sent the connection to the L7 port; it was never refused at L4.
  EXPECT_GE((*c)[SHUNT_CTR_L7_HANDED_OFF], 1u);
  EXPECT_EQ((*c)[SHUNT_CTR_POLICY_L7_NO_PROXY], 0u);
}

TEST_F(L7ProxyTest, PolicyCheckSaysThePairIsJudgedPerRequest) {
  ASSERT_OK_AND_ASSIGN(std::string out,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", n1_->api_socket(),
                                       " policy check --from demo/client --to demo/local "
                                       "--port 8000 -o json")));
  auto check = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(check.is_discarded()) << out;
  EXPECT_EQ(check["verdict"], "l7") << out;
  EXPECT_THAT(check["effect"].get<std::string>(), HasSubstr("requests no route grants get 403"));
}

TEST_F(L7ProxyTest, WhatIsNotHttpIsRefusedInEnforceMode) {
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(c.get(), local_->ip, 8000));
  ASSERT_OK(WriteAll(c.get(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  // Reset by the proxy, never answered by the server.
  EXPECT_FALSE(ReadToEof(c.get()).ok());
  ASSERT_OK(WaitRefusal(*n1_, "l7-not-http"));
  EXPECT_THAT(Slurp(server_log_), Not(HasSubstr(client_->ip)));
}

// A WebSocket (python3-websockets on both ends): the handshake is a request
// like any other, judged by its route; once the server switched protocols
// the connection is a byte stream both ways, through the proxy.
TEST_F(L7ProxyTest, AWebSocketPassesOnceItsHandshakeIsGranted) {
  const std::string script = std::string(SHUNT_E2E_TESTDATA) + "/ws_echo.py";
  ASSERT_OK(n1_->Spawn(*local_, {"/usr/bin/python3", script, "serve", "8003"},
                       n1_->work_dir() + "/ws.log")
                .status());
  ASSERT_OK(Eventually(
      "the WebSocket server listens",
      [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n1_->PodSocket(*local_, SOCK_STREAM));
        return ConnectTo(s.get(), local_->ip, 8003);
      },
      10000));
  const std::string base = absl::StrCat("ws://", local_->ip, ":8003");
  ASSERT_OK_AND_ASSIGN(std::string out, RunInClient({"/usr/bin/python3", script, "talk",
                                                     base + "/allowed-ws", "20"}));
  EXPECT_THAT(out, HasSubstr("echoed 20"));
  // A handshake no route grants never reaches the server.
  absl::StatusOr<std::string> refused =
      RunInClient({"/usr/bin/python3", script, "talk", base + "/admin-ws", "1"});
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("refused 403"));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests_denied", 1));
  EXPECT_GE(ProxyCounter(*n1_, "l7_requests"), 2u);
}

// Permissive policy mode: each request is judged and a would-be denial
// reported, but it is forwarded all the same.
// The L7 layer's limits as flags (docs/l7.md "Limits"): a head over
// --l7-max-header-bytes gets 431 and the server never sees it; past
// --l7-max-connections a new connection is refused, and taken again once
// one closed.
class L7LimitsTest : public L7ProxyTest {
 protected:
  void SetUp() override {
    more_flags_ = {"--l7-max-header-bytes=2048", "--l7-max-connections=2"};
    L7ProxyTest::SetUp();
  }
};

TEST_F(L7LimitsTest, AHeadTooLargeGets431AndConnectionsPastTheLimitAreRefused) {
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunInClient({"curl", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]", "-H",
                                    "x-big: " + std::string(3000, 'b'), Url("/allowed.txt")}));
  EXPECT_EQ(out, "[431]");
  ASSERT_OK_AND_ASSIGN(out,
                       RunInClient({"curl", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]", "-H",
                                    "x-small: " + std::string(1000, 's'), Url("/allowed.txt")}));
  EXPECT_EQ(out, "[200]");
  EXPECT_THAT(Slurp(server_log_), Not(HasSubstr("bbbb")));

  // Two connections with half a request head each hold the two places.
  std::vector<lib::UniqueFd> held;
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(lib::UniqueFd c, n1_->PodSocket(*client_, SOCK_STREAM));
    ASSERT_OK(ConnectTo(c.get(), local_->ip, 8000));
    ASSERT_OK(WriteAll(c.get(), "GET /allowed.txt HTTP/1.1\r\n"));
    held.push_back(std::move(c));
  }
  ASSERT_OK(WaitCounter(*n1_, "l7_connections", 4));  // the two curls, the two held
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd third, n1_->PodSocket(*client_, SOCK_STREAM));
  ASSERT_OK(ConnectTo(third.get(), local_->ip, 8000));
  (void)WriteAll(third.get(), "GET /allowed.txt HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_FALSE(ReadToEof(third.get()).ok()) << "reset: no place for it";
  ASSERT_OK(WaitRefusal(*n1_, "l7-connection-limit"));
  // One closes: its place is taken again.
  held.pop_back();
  ASSERT_OK(Eventually("a new connection is served", [&]() -> absl::Status {
    auto got = RunInClient(
        {"curl", "-sS", "-o", "/dev/null", "-w", "[%{http_code}]", Url("/allowed.txt")});
    if (got.ok() && *got == "[200]") return absl::OkStatus();
    return absl::UnavailableError(got.ok() ? *got : std::string(got.status().message()));
  }));
}

class L7PermissiveTest : public L7ProxyTest {
 protected:
  void SetUp() override {
    n1_flags_extra_ = "--mode=permissive";
    L7ProxyTest::SetUp();
  }
};

TEST_F(L7PermissiveTest, AWouldBeDenialIsForwardedAndReported) {
  ASSERT_OK_AND_ASSIGN(std::string out, RunInClient({"curl", "-sS", "-w", "\n[%{http_code}]\n",
                                                     Url("/denied.txt")}));
  EXPECT_THAT(out, HasSubstr("DENIED-PAGE\n\n[200]"));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests_would_deny", 1));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 0u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "l7") continue;
    ++seen;
    EXPECT_EQ(d["enforced"], false);
    EXPECT_EQ(d["reason"], "no-route-matched");
    EXPECT_EQ(d["path"], "/denied.txt");
  }
  EXPECT_EQ(seen, 1);
}

TEST_F(L7CrossNodeTest, TheReceivingProxyJudgesEachRequestOfATunnelledConnection) {
  const std::string server_log = n2_->work_dir() + "/http.log";
  ASSERT_OK(StartHttpServer(*n2_, *server_, n2_->work_dir() + "/www", server_log));
  const std::string url = absl::StrCat("http://", server_->ip, ":8000");
  const std::string log = n1_->work_dir() + "/curl.log";
  ASSERT_OK_AND_ASSIGN(pid_t pid,
                       n1_->Spawn(*client_,
                                  {"curl", "-sSi", "-w", "\n[%{http_code} %{num_connects}]\n",
                                   url + "/allowed.txt", url + "/denied.txt", url + "/allowed.txt"},
                                  log));
  ASSERT_OK_AND_ASSIGN(int status, WaitExit(pid, 30000));
  const std::string out = Slurp(log);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << out;
  const std::vector<std::string> answers = absl::StrSplit(out, "HTTP/1.1 ", absl::SkipEmpty());
  ASSERT_EQ(answers.size(), 3u) << out;
  EXPECT_THAT(answers[0], HasSubstr("ALLOWED-PAGE\n\n[200 1]"));
  EXPECT_THAT(answers[1], HasSubstr("x-shunt-denied: no-route-matched"));
  EXPECT_THAT(answers[1], HasSubstr("[403 0]"));
  EXPECT_THAT(answers[2], HasSubstr("ALLOWED-PAGE\n\n[200 0]"));
  // The server saw the two allowed GETs from the client pod's address.
  ASSERT_OK(Eventually("the server logged both GETs", [&]() -> absl::Status {
    const std::string l = Slurp(server_log);
    size_t n = 0;
    for (size_t at = l.find(client_->ip + " - - "); at != std::string::npos;
         at = l.find(client_->ip + " - - ", at + 1))
      ++n;
    if (n == 2) return absl::OkStatus();
    return absl::UnavailableError(l);
  }));
  EXPECT_THAT(Slurp(server_log), Not(HasSubstr("denied.txt")));
  // Node 2's proxy judged and reported it; node 1's only tunnelled it.
  ASSERT_OK(WaitCounter(*n2_, "l7_requests", 3));
  EXPECT_EQ(ProxyCounter(*n2_, "l7_requests_denied"), 1u);
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests"), 0u);
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n2_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["type"] != "l7") continue;
    ++seen;
    EXPECT_EQ(d["src_identity"], "demo/client");
    EXPECT_EQ(d["dst_identity"], "demo/server");
    EXPECT_EQ(d["src_ip"], client_->ip);
    EXPECT_EQ(d["path"], "/denied.txt");
  }
  EXPECT_EQ(seen, 1);
  // Node 2's `shuntctl stat edge` names the client on node 1 by its
  // address and counts the edge's requests: two served, one denied.
  nlohmann::json edges;
  ASSERT_OK(Eventually("node 2 counts the requests", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(edges, ShuntctlJson(*n2_, "stat edge --window 60s"));
    for (const auto& r : edges["rows"])
      if (r.value("success_unit", "") == "request" &&
          r["successes"].get<uint64_t>() + r["failures"].get<uint64_t>() >= 3)
        return absl::OkStatus();
    return absl::UnavailableError(edges.dump());
  }));
  int rows = 0;
  for (const auto& r : edges["rows"]) {
    if (r.value("success_unit", "") != "request") continue;
    ++rows;
    EXPECT_EQ(r["src_namespace"], "demo") << r.dump();
    EXPECT_EQ(r["src_name"], "sa/client") << r.dump();  // a pod without owner
    EXPECT_EQ(r["namespace"], "demo") << r.dump();
    EXPECT_EQ(r["name"], "sa/server") << r.dump();
    EXPECT_EQ(r["successes"], 2) << r.dump();
    EXPECT_EQ(r["failures"], 1) << r.dump();
  }
  EXPECT_EQ(rows, 1) << edges.dump();
}

}  // namespace
}  // namespace shunt::e2e
