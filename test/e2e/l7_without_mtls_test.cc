// The L7 layer without mTLS (docs/l7.md "Without mTLS"): agents run with
// --mtls=off, and the first HTTP-routes-only grant to one of a node's pods
// starts that node's proxy for the L7 layer alone (no certificates, no
// tunnels). Between pods of one node each request is judged as with mTLS:
// curl gets 200, 403, 200 on one connection and the server sees only the
// allowed requests, from the client pod's own address. To another node's
// pod no proxy of that node judges the requests (no tunnel carries them):
// the grant opens nothing, connect() fails with EPERM, and
// `shuntctl policy check` says why.
#include <sys/socket.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/l7_fixture.h"
#include "test/e2e/harness/service_yaml.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// demo/client may GET /allowed* of demo/local (node 1) and of demo/server
// (node 2).
constexpr char kGrantsWithoutMtls[] = R"(apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: plain-api, namespace: demo}
spec:
  matches:
  - {name: read, pathRegex: "/allowed.*", methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-local, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: local, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: plain-api, matches: [read]}]
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-server, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: plain-api, matches: [read]}]
)";

class L7WithoutMtlsTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    // Node 1's L7-only proxy exports its spans (to a collector started by
    // the test that looks at them).
    n1_flags_ = {"--mtls=off", "--mode=enforce", "--trace-otlp-endpoint=http://127.0.0.1:4318"};
    n2_flags_ = {"--mtls=off", "--mode=enforce"};
    policy_yaml_ = kGrantsWithoutMtls;
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Started by the grant (each node has a destination of it).
    ASSERT_OK(WaitProxyReady(*n1_));
    ASSERT_OK_AND_ASSIGN(nlohmann::json st, n1_->AgentStatus());
    ASSERT_EQ(st["mtls"]["l7_only"], true) << st["mtls"].dump();
  }
};

TEST_F(L7WithoutMtlsTest, RequestsBetweenPodsOfOneNodeAreJudgedEachOnItsOwn) {
  const std::string www = n1_->work_dir() + "/www-plain", log = n1_->work_dir() + "/plain.log";
  ASSERT_OK(StartHttpServer(*n1_, *local_, www, log));
  const std::string spans = n1_->work_dir() + "/spans.jsonl";
  ASSERT_OK(n1_->SpawnInNode(
                   {"python3", SHUNT_E2E_TESTDATA "/otlp_collector.py", "127.0.0.1", "4318", spans},
                   n1_->work_dir() + "/collector.log")
                .status());
  ASSERT_OK(Eventually("node 1's collector listens", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n1_->NodeSocket(SOCK_STREAM));
    return ConnectTo(s.get(), "127.0.0.1", 4318);
  }));
  const std::string base = absl::StrCat("http://", local_->ip, ":8000");
  constexpr char kTrace[] = "5e1f0e7c2b3a4d5e6f708192a3b4c5d6";
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"curl", "-s", "-w", "\n%{http_code} %{num_connects}\n", "-H",
                absl::StrCat("traceparent: 00-", kTrace, "-00f067aa0ba902b7-01"),
                base + "/allowed.txt", base + "/denied.txt", base + "/allowed.txt?again"}));
  EXPECT_THAT(out, HasSubstr("ALLOWED-PAGE\n\n200 1\n")) << out;
  EXPECT_THAT(out, HasSubstr("403 0\n")) << out;
  EXPECT_THAT(out, HasSubstr("ALLOWED-PAGE\n\n200 0\n")) << out;
  EXPECT_THAT(out, Not(HasSubstr("DENIED-PAGE"))) << out;
  ASSERT_OK(Eventually("the server logged both GETs", [&]() -> absl::Status {
    const std::string l = Slurp(log);
    int n = 0;
    for (absl::string_view line : absl::StrSplit(l, '\n'))
      if (absl::StrContains(line, "GET /allowed.txt") && absl::StartsWith(line, client_->ip)) ++n;
    if (n == 2) return absl::OkStatus();
    return absl::UnavailableError(l);
  }));
  EXPECT_THAT(Slurp(log), Not(HasSubstr("denied.txt")));
  ASSERT_OK(WaitCounter(*n1_, "l7_requests", 3));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_requests_denied"), 1u);
  // The allowed requests' spans reach the collector without mTLS too (a
  // denied request is no span: it is in shuntctl drops).
  ASSERT_OK(
      Eventually("node 1's proxy exported the two allowed requests' spans", [&]() -> absl::Status {
        int n = 0;
        for (absl::string_view line : absl::StrSplit(Slurp(spans), '\n', absl::SkipEmpty()))
          if (absl::StrContains(line, kTrace) && absl::StrContains(line, "00f067aa0ba902b7")) ++n;
        if (n == 2) return absl::OkStatus();
        return absl::UnavailableError(absl::StrCat(n, " spans: ", Slurp(spans)));
      }));
  // No tunnel runs: the proxy listens on its L7 port alone.
  const pid_t pid = ProxyPid(*n1_);
  ASSERT_GT(pid, 0);
  ASSERT_OK_AND_ASSIGN(std::string ss, Sh(absl::StrCat("nsenter -t ", pid, " -n ss -Hltnp")));
  int listening = 0;
  for (absl::string_view line : absl::StrSplit(ss, '\n', absl::SkipEmpty())) {
    if (!absl::StrContains(line, absl::StrCat("pid=", pid, ","))) continue;
    ++listening;
    EXPECT_THAT(std::string(line), HasSubstr(absl::StrCat(n1_->link_ip(), ":15006"))) << ss;
  }
  EXPECT_GE(listening, 1) << ss;
}

TEST_F(L7WithoutMtlsTest, AnHttpOnlyGrantToAnotherNodesPodOpensNothing) {
  ASSERT_OK(
      StartHttpServer(*n2_, *server_, n2_->work_dir() + "/www-far", n2_->work_dir() + "/far.log"));
  ASSERT_OK_AND_ASSIGN(lib::UniqueFd s, n1_->PodSocket(*client_, SOCK_STREAM));
  const absl::Status st = ConnectTo(s.get(), server_->ip, 8000);
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("Operation not permitted")) << st;
  ASSERT_OK_AND_ASSIGN(
      nlohmann::json check,
      ShuntctlJson(*n1_, "policy check --from demo/client --to demo/server --port 8000"));
  EXPECT_EQ(check["verdict"], "deny-l7") << check.dump();
  EXPECT_THAT(check["reason"].get<std::string>(), HasSubstr("another node's pod without --mtls"));
  ASSERT_OK_AND_ASSIGN(
      check, ShuntctlJson(*n1_, "policy check --from demo/client --to demo/local --port 8000"));
  EXPECT_EQ(check["verdict"], "l7") << check.dump();
}

// A Service that asks to be balanced per request (here shunt.dev/retries)
// needs the tunnels, since a pick may be another node's pod: without mTLS
// the kernel balances its connections, and the agent says so rather than
// drop the setting silently. The connection still reaches the pod, where
// the HTTP-routes-only grant is judged per request as before.
TEST_F(L7WithoutMtlsTest, AServiceAskingForRequestBalancingIsReportedAndBalancedPerConnection) {
  const std::string www = n1_->work_dir() + "/www-svc", log = n1_->work_dir() + "/svc.log";
  ASSERT_OK(StartHttpServer(*n1_, *local_, www, log));
  ASSERT_OK(n1_->ApplyConfigFile("services.yaml",
                                 Service("retrying", "10.96.0.51", "shunt.dev/retries: \"2\"") +
                                     Slice("retrying", *local_, 8000)));
  ASSERT_OK(Eventually(
      "node 1's agent says the service is balanced per connection", [&]() -> absl::Status {
        const std::string l = n1_->AgentLog();
        if (absl::StrContains(l,
                              "l7: 1 services ask to be balanced per request (shunt.dev/ "
                              "annotations or a TrafficSplit with matches: demo/retrying), "
                              "which needs the mTLS tunnels") &&
            absl::StrContains(l,
                              "with --mtls=off the kernel balances their "
                              "connections, without their timeouts, retries"))
          return absl::OkStatus();
        return absl::UnavailableError("no warning yet");
      }));
  ASSERT_OK_AND_ASSIGN(std::string out,
                       RunInPod(*n1_, *client_,
                                {"curl", "-s", "-w", "\n%{http_code}\n", "--retry", "0",
                                 "http://10.96.0.51/allowed.txt", "http://10.96.0.51/denied.txt"}));
  EXPECT_THAT(out, HasSubstr("ALLOWED-PAGE\n\n200\n")) << out;
  EXPECT_THAT(out, HasSubstr("403\n")) << out;
  EXPECT_THAT(out, Not(HasSubstr("DENIED-PAGE"))) << out;
  // The kernel balanced the connection (no per-request hand-off).
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, n1_->AgentStatus());
  EXPECT_EQ(st["mtls"]["l7_services_planned"], 0) << st["mtls"].dump();
}

// Node 1 runs --mtls=permissive, node 2 --mtls=off: node 1's proxy finds no
// tunnel port on node 2 (a meshless node). What permissive mode relays in
// plaintext there is only what node 1's kernel granted at L4: a connection
// it sent to the tunnel for an HTTP-routes-only grant needs node 2's proxy
// to judge each request, which no tunnel reaches, so it is reset, never
// relayed (relayed, it would come from node 1's address, which node 2's
// guard does not judge as a pod's: every request would pass).
class L7ToMeshlessNodeTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    n1_flags_ = {"--mtls=permissive", "--mode=enforce"};
    n2_flags_ = {"--mtls=off", "--mode=enforce"};
    // And port 7700 at L4, which permissive mode still relays.
    policy_yaml_ = absl::StrCat(kGrantsWithoutMtls, R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: TCPRoute
metadata: {name: plain-port, namespace: demo}
spec: {matches: {ports: [7700]}}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-to-server-l4, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: TCPRoute, name: plain-port}]
)");
    MtlsMeshTest::SetUp();
  }
};

TEST_F(L7ToMeshlessNodeTest, AnHttpRoutesOnlyGrantIsNeverRelayedInPlaintext) {
  const std::string log = n2_->work_dir() + "/meshless.log";
  ASSERT_OK(StartHttpServer(*n2_, *server_, n2_->work_dir() + "/www-meshless", log));
  const std::string base = absl::StrCat("http://", server_->ip, ":8000");
  // Twice each: the first finds node 2 meshless, the later ones know it.
  for (const char* path : {"/denied.txt", "/allowed.txt", "/denied.txt", "/allowed.txt"}) {
    absl::StatusOr<std::string> out = RunInPod(*n1_, *client_, {"curl", "-sS", base + path});
    EXPECT_FALSE(out.ok()) << path << " was served: " << *out;
    if (!out.ok()) {
      EXPECT_THAT(std::string(out.status().message()), Not(HasSubstr("-PAGE")));
    }
  }
  ASSERT_OK(WaitRefusal(*n1_, "l7-grant-needs-tunnel", 4));
  EXPECT_EQ(ProxyCounter(*n1_, "l7_grant_needs_tunnel"), 4u);
  EXPECT_EQ(ProxyCounter(*n1_, "plaintext_to_meshless_node"), 0u);
  EXPECT_THAT(Slurp(log), Not(HasSubstr("GET"))) << "the server got a request";
  // shuntctl drops names each one, between the two pods.
  ASSERT_OK_AND_ASSIGN(std::vector<nlohmann::json> drops, ShuntctlDrops(*n1_));
  int seen = 0;
  for (const auto& d : drops) {
    if (d["reason"] != "l7-grant-needs-tunnel") continue;
    ++seen;
    EXPECT_EQ(d["src_ip"], client_->ip) << d.dump();
    EXPECT_EQ(d["dst_ip"], server_->ip) << d.dump();
    EXPECT_EQ(d["dst_port"], 8000) << d.dump();
  }
  EXPECT_EQ(seen, 4);
  // The L4 grant between the same pods is relayed in plaintext as before.
  ASSERT_OK_AND_ASSIGN(Pair p, CrossNode(7700));
  ASSERT_OK(WriteAll(p.client.get(), "hello"));
  ASSERT_OK_AND_ASSIGN(std::string got, ReadExactly(p.server.get(), 5));
  EXPECT_EQ(got, "hello");
  ASSERT_OK(WaitCounter(*n1_, "plaintext_to_meshless_node", 1));
}

}  // namespace
}  // namespace shunt::e2e
