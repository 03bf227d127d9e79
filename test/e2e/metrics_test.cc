// The agent's scrape endpoints with real traffic behind them: /metrics must
// parse with Prometheus's own promtool and carry exact per-edge counts; the
// SMI TrafficMetrics API must validate against its schema and report what
// the pods did.
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/mesh_fixture.h"

namespace shunt::e2e {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

class MetricsTest : public MeshTest {
 protected:
  void SetUp() override {
    MeshTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    StartMesh({"--metrics-addr=127.0.0.1:0"});
    ASSERT_OK_AND_ASSIGN(Json st, node_->AgentStatus());
    addr_ = st["metrics_addr"].get<std::string>();
    ASSERT_FALSE(addr_.empty()) << st.dump();
  }

  // `n` request/response exchanges, the server answering after `delay`, then
  // an orderly close. *true_p50_us: the median response time they really had.
  void Traffic(uint16_t port, int n, std::chrono::milliseconds delay,
               double* true_p50_us = nullptr) {
    ASSERT_OK_AND_ASSIGN(Conn c, Connect(*client_, *server_, port));
    ASSERT_OK_AND_ASSIGN(auto truth,
                         TimedExchanges(c.client.get(), c.server.get(), n, 32, 64, delay));
    if (true_p50_us) *true_p50_us = MedianUs(truth);
    shutdown(c.client.get(), SHUT_WR);
    ASSERT_OK(ReadToEof(c.server.get()).status());
    c.server.Reset();
    ASSERT_OK(ReadToEof(c.client.get()).status());
  }

  // Validates with python3-jsonschema against testdata/trafficmetrics.schema.json.
  absl::Status ValidateSchema(const std::string& json) {
    const std::string file = absl::StrCat(node_->work_dir(), "/tm.json");
    std::ofstream(file) << json;
    auto out = Sh(absl::StrCat(
        "python3 -c 'import json,sys,jsonschema; "
        "jsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))' ",
        SHUNT_E2E_TESTDATA, "/trafficmetrics.schema.json ", file, " && echo VALID"));
    if (!out.ok()) return out.status();
    if (out->find("VALID") == std::string::npos) return absl::InvalidArgumentError(*out);
    return absl::OkStatus();
  }

  static std::string Metric(const Json& tm, const std::string& name) {
    for (const auto& m : tm["metrics"])
      if (m["name"] == name) return m["value"].get<std::string>();
    return "missing";
  }

  // A Kubernetes quantity as a number ("4980m" -> 4.98).
  static double QuantityValue(const std::string& q) {
    if (!q.empty() && q.back() == 'm') return std::stod(q.substr(0, q.size() - 1)) / 1000;
    return std::stod(q);
  }

  std::string addr_;
};

TEST_F(MetricsTest, PrometheusEndpointParsesWithPromtoolAndCountsEachEdgeExactly) {
  Traffic(7201, 10, std::chrono::milliseconds(0));
  Traffic(7201, 10, std::chrono::milliseconds(0));
  // One refused connection on another port.
  ASSERT_OK_AND_ASSIGN(auto s, node_->PodSocket(*client_, SOCK_STREAM));
  EXPECT_FALSE(ConnectTo(s.get(), server_->ip, 7202).ok());
  ASSERT_OK(WaitFlows(*node_, "--state closed --to demo/server", 3).status());

  ASSERT_OK_AND_ASSIGN(std::string text, HttpGetInNode(*node_, addr_, "/metrics"));
  const std::string file = absl::StrCat(node_->work_dir(), "/metrics.txt");
  std::ofstream(file) << text;
  ASSERT_OK_AND_ASSIGN(std::string lint,
                       Sh(absl::StrCat("promtool check metrics < ", file, " && echo PROMTOOL_OK")));
  EXPECT_THAT(lint, HasSubstr("PROMTOOL_OK")) << lint;

  const std::string edge =
      "src_namespace=\"demo\",src_workload=\"sa/client\",src_identity=\"demo/"
      "client\",dst_namespace=\"demo\","
      "dst_workload=\"sa/server\",dst_identity=\"demo/server\"";
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_flows_total{", edge,
                                           ",dst_port=\"7201\",result=\"success\"} 2\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_flows_total{", edge,
                                           ",dst_port=\"7202\",result=\"refused\"} 1\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_flows_short_circuited_total{", edge,
                                           ",dst_port=\"7201\"} 2\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_flow_bytes_total{", edge,
                                           ",dst_port=\"7201\",direction=\"to_server\"} 640\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_flow_bytes_total{", edge,
                                           ",dst_port=\"7201\",direction=\"to_client\"} 1280\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_response_latency_seconds_count{", edge,
                                           ",dst_port=\"7201\"} 20\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_connect_latency_seconds_count{", edge,
                                           ",dst_port=\"7201\"} 2\n")));
  EXPECT_THAT(text, HasSubstr(absl::StrCat("shunt_response_latency_seconds_bucket{", edge,
                                           ",dst_port=\"7201\",le=\"+Inf\"} 20\n")));
  // Health: map fill levels and the agent's own counters are there.
  EXPECT_TRUE(std::regex_search(
      text, std::regex("\nshunt_bpf_map_entries\\{map=\"shunt_endpoints_v2\"\\} 2\n")))
      << text;
  EXPECT_TRUE(std::regex_search(
      text, std::regex("\nshunt_bpf_map_max_entries\\{map=\"shunt_flows_v3\"\\} [1-9]")));
  EXPECT_THAT(text, HasSubstr("\nshunt_flow_records_lost_total 0\n"));
  EXPECT_THAT(text, HasSubstr("\nshunt_flow_records_total 3\n"));
}

TEST_F(MetricsTest, TrafficMetricsValidateAgainstTheSchemaAndReportThePods) {
  double true_p50_us = 0;
  Traffic(7203, 40, std::chrono::milliseconds(5), &true_p50_us);
  ASSERT_OK_AND_ASSIGN(auto s, node_->PodSocket(*client_, SOCK_STREAM));
  EXPECT_FALSE(ConnectTo(s.get(), server_->ip, 7204).ok());
  ASSERT_OK(WaitFlows(*node_, "--state closed --to demo/server", 2).status());
  const std::string base = "/apis/metrics.smi-spec.io/v1alpha1";

  ASSERT_OK_AND_ASSIGN(std::string pod,
                       HttpGetInNode(*node_, addr_, base + "/namespaces/demo/pods/server"));
  ASSERT_OK(ValidateSchema(pod));
  Json tm = Json::parse(pod);
  EXPECT_EQ(tm["resource"], (Json{{"kind", "Pod"}, {"namespace", "demo"}, {"name", "server"}}));
  EXPECT_EQ(tm["window"], "30s");
  EXPECT_EQ(Metric(tm, "success_count"), "1");
  EXPECT_EQ(Metric(tm, "failure_count"), "1") << "the refused connection";
  // Within 10% of what the exchanges really took (the server's 5 ms sleep
  // wakes late by a varying amount).
  ASSERT_GE(true_p50_us, 5000);
  EXPECT_NEAR(QuantityValue(Metric(tm, "p50_response_latency")), true_p50_us / 1e3,
              true_p50_us / 1e4)
      << pod;

  ASSERT_OK_AND_ASSIGN(
      std::string edges,
      HttpGetInNode(*node_, addr_, base + "/namespaces/demo/pods/client/edges?window=60s"));
  ASSERT_OK(ValidateSchema(edges));
  Json list = Json::parse(edges);
  ASSERT_EQ(list["items"].size(), 1u) << edges;
  const Json& e = list["items"][0];
  EXPECT_EQ(e["window"], "60s");
  EXPECT_EQ(e["edge"]["direction"], "to");
  EXPECT_EQ(e["edge"]["resource"],
            (Json{{"kind", "Pod"}, {"namespace", "demo"}, {"name", "server"}}));
  EXPECT_EQ(Metric(e, "success_count"), "1");

  ASSERT_OK_AND_ASSIGN(std::string pods,
                       HttpGetInNode(*node_, addr_, base + "/namespaces/demo/pods"));
  ASSERT_OK(ValidateSchema(pods));
  EXPECT_EQ(Json::parse(pods)["items"].size(), 2u) << "client (no inbound traffic) and server";
  ASSERT_OK_AND_ASSIGN(std::string ns, HttpGetInNode(*node_, addr_, base + "/namespaces/demo"));
  ASSERT_OK(ValidateSchema(ns));
  EXPECT_EQ(Metric(Json::parse(ns), "success_count"), "1");

  // Bad requests are named.
  auto bad = HttpGetInNode(*node_, addr_, base + "/namespaces/demo/pods/server?window=2h");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("400"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("window '2h'"));
  auto kind = HttpGetInNode(*node_, addr_, base + "/namespaces/demo/widgets");
  ASSERT_FALSE(kind.ok());
  EXPECT_THAT(std::string(kind.status().message()), HasSubstr("unknown kind 'widgets'"));
}

}  // namespace
}  // namespace shunt::e2e
