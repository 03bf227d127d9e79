// Tracing through two L7 hops (docs/l7.md "Tracing"): a request from node 1's
// client to a service balanced per request whose only endpoint is on node 2,
// where the client may reach it only through HTTP routes. Node 1's proxy
// picks the endpoint (a hop), node 2's judges the request (another): each
// carries the trace on with a span id of its own, and with
// --trace-otlp-endpoint each exports its span, as OTLP/HTTP JSON, to a
// collector on its node (test/e2e/testdata/otlp_collector.py, standing in for
// OpenTelemetry's). Seen from outside: the traceparent the backend received,
// and the spans the collectors stored.
#include <sys/socket.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/files.h"
#include "test/e2e/harness/mtls_fixture.h"
#include "test/e2e/harness/service_yaml.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;

constexpr char kFarVip[] = "10.96.0.30";
constexpr char kTraceId[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kClientSpan[] = "00f067aa0ba902b7";

class L7TracingTest : public MtlsMeshTest {
 protected:
  void SetUp() override {
    if (std::string why = PrivilegedSkipReason(); !why.empty()) GTEST_SKIP() << why;
    // Each node's proxy exports to a collector on its own node.
    n1_flags_ = {"--mode=enforce", "--trace-otlp-endpoint=http://127.0.0.1:4318"};
    n2_flags_ = {"--mode=enforce", "--trace-otlp-endpoint=http://127.0.0.1:4318"};
    MtlsMeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const std::string objects = std::string(R"(---
apiVersion: specs.smi-spec.io/v1alpha4
kind: HTTPRouteGroup
metadata: {name: traced-api, namespace: demo}
spec:
  matches:
  - {name: read, pathRegex: "/traced.*", methods: [GET]}
---
apiVersion: access.smi-spec.io/v1alpha3
kind: TrafficTarget
metadata: {name: client-reads-server, namespace: demo}
spec:
  destination: {kind: ServiceAccount, name: server, namespace: demo}
  sources: [{kind: ServiceAccount, name: client, namespace: demo}]
  rules: [{kind: HTTPRouteGroup, name: traced-api}]
)") + Service("far", kFarVip, "shunt.dev/l7: http") +
                                Slice("far", *server_, 8080);
    for (TestNode* n : {n1_.get(), n2_.get()})
      ASSERT_OK(n->ApplyConfigFile("services.yaml", objects));
    backend_log_ = n2_->work_dir() + "/far.log";
    ASSERT_OK(n2_->Spawn(*server_,
                         {"python3", SHUNT_E2E_TESTDATA "/l7_backend.py", "--name", "far", "--port",
                          "8080"},
                         backend_log_)
                  .status());
    for (TestNode* n : {n1_.get(), n2_.get()}) {
      ASSERT_OK(n->SpawnInNode({"python3", SHUNT_E2E_TESTDATA "/otlp_collector.py", "127.0.0.1",
                                "4318", SpansFile(*n)},
                               n->work_dir() + "/collector.log")
                    .status());
      ASSERT_OK(Eventually(absl::StrCat(n->name(), "'s collector listens"), [&]() -> absl::Status {
        SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd s, n->NodeSocket(SOCK_STREAM));
        return ConnectTo(s.get(), "127.0.0.1", 4318);
      }));
    }
    ASSERT_OK(
        Eventually("the backend listens and node 1's proxy balances far", [&]() -> absl::Status {
          if (Slurp(backend_log_).find("listening") == std::string::npos)
            return absl::UnavailableError("backend not yet");
          auto st = n1_->AgentStatus();
          if (!st.ok()) return st.status();
          if ((*st)["mtls"]["l7_services"] == 1) return absl::OkStatus();
          return absl::UnavailableError((*st)["mtls"].dump());
        }));
  }
  static std::string SpansFile(TestNode& n) { return n.work_dir() + "/spans.jsonl"; }
  // The spans `n`'s collector stored of trace kTraceId.
  static std::vector<nlohmann::json> Spans(TestNode& n) {
    std::vector<nlohmann::json> out;
    for (absl::string_view line : absl::StrSplit(Slurp(SpansFile(n)), '\n', absl::SkipEmpty())) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j["traceId"] == kTraceId) out.push_back(std::move(j));
    }
    return out;
  }
  static std::string Attribute(const nlohmann::json& span, const std::string& key) {
    for (const auto& a : span["attributes"])
      if (a["key"] == key) return a["value"].begin().value().get<std::string>();
    return "";
  }

  std::string backend_log_;
};

TEST_F(L7TracingTest, EachHopAddsASpanOfItsOwnAndExportsIt) {
  ASSERT_OK_AND_ASSIGN(
      std::string out,
      RunInPod(*n1_, *client_,
               {"curl", "-sS", "-w", "\n[%{http_code}]\n", "-H",
                absl::StrCat("traceparent: 00-", kTraceId, "-", kClientSpan, "-01"),
                absl::StrCat("http://", kFarVip, "/traced")}));
  EXPECT_THAT(out, HasSubstr("[200]"));
  // The backend got the trace, with the parent being the last hop's span.
  const std::string log = Slurp(backend_log_);
  const size_t at = log.find(absl::StrCat("traceparent=00-", kTraceId, "-"));
  ASSERT_NE(at, std::string::npos) << log;
  const std::string last_hop = log.substr(at + 12 + 3 + 32 + 1, 16);  // "traceparent=00-T-"
  EXPECT_NE(last_hop, kClientSpan);

  std::vector<nlohmann::json> first, second;
  ASSERT_OK(Eventually(
      "both collectors have their node's span",
      [&]() -> absl::Status {
        first = Spans(*n1_);
        second = Spans(*n2_);
        if (first.size() == 1 && second.size() == 1) return absl::OkStatus();
        return absl::UnavailableError(
            absl::StrCat(first.size(), " and ", second.size(), " spans so far"));
      },
      10000));
  // Node 1's hop: a child of the client's span; node 2's: a child of node
  // 1's, and the parent the backend saw.
  EXPECT_EQ(first[0]["parentSpanId"], kClientSpan);
  const std::string first_id = first[0]["spanId"];
  EXPECT_NE(first_id, kClientSpan);
  EXPECT_EQ(second[0]["parentSpanId"], first_id);
  EXPECT_EQ(second[0]["spanId"], last_hop);
  for (const auto* span : {&first[0], &second[0]}) {
    EXPECT_EQ(Attribute(*span, "http.request.method"), "GET") << span->dump();
    EXPECT_EQ(Attribute(*span, "http.response.status_code"), "200") << span->dump();
    EXPECT_EQ(Attribute(*span, "shunt.source.identity"), "demo/client") << span->dump();
    EXPECT_EQ((*span)["resource"]["service.name"]["stringValue"], "shunt-proxy");
    EXPECT_LE(std::stoull((*span)["startTimeUnixNano"].get<std::string>()),
              std::stoull((*span)["endTimeUnixNano"].get<std::string>()));
  }
  // The hop that judged the route names it.
  EXPECT_EQ(Attribute(second[0], "http.route"), "demo/traced-api#read") << second[0].dump();
}

}  // namespace
}  // namespace shunt::e2e
