// Request metrics of the L7 layer where users read them (docs/l7.md,
// "Request metrics"): `shuntctl stat route`, `stat pod`, `top` and the SMI
// TrafficMetrics API count each request a real client (curl) sent, exactly,
// by route and status class; an edge the L7 layer carried counts requests,
// not flows.
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "test/e2e/harness/ctl.h"
#include "test/e2e/harness/l7_fixture.h"

namespace shunt::e2e {
namespace {

using ::testing::HasSubstr;

// The value of the named metric of a TrafficMetrics item ("" if absent).
std::string Metric(const nlohmann::json& item, const std::string& name) {
  for (const auto& m : item.value("metrics", nlohmann::json::array()))
    if (m.value("name", "") == name) return m.value("value", "");
  return "";
}

TEST_F(L7ProxyTest, StatTopAndTrafficMetricsCountEachRequestOnce) {
  // 12 allowed and served, 3 allowed and not found (404: the server's
  // answer, a success), 5 no route grants (403 from the proxy: failures).
  std::vector<std::string> argv = {"curl"};
  auto add = [&](const std::string& path, int times) {
    for (int i = 0; i < times; ++i) {
      if (argv.size() > 1) argv.push_back("--next");
      for (const std::string& a : {std::string("-sS"), std::string("-o"), std::string("/dev/null"),
                                   std::string("-w"), std::string("[%{http_code}]"), Url(path)})
        argv.push_back(a);
    }
  };
  add("/allowed.txt", 12);
  add("/allowed-missing.txt", 3);
  add("/denied.txt", 5);
  ASSERT_OK_AND_ASSIGN(std::string out, RunInClient(argv));
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = out.find(what); at != std::string::npos; at = out.find(what, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("[200]"), 12u) << out;
  EXPECT_EQ(count("[404]"), 3u) << out;
  EXPECT_EQ(count("[403]"), 5u) << out;
  EXPECT_EQ(out.size(), 20 * 5u) << out;  // nothing else

  // `shuntctl stat route`: once the proxy reported all 20, exactly them.
  nlohmann::json routes;
  ASSERT_OK(Eventually("stat route counts 20 requests", [&]() -> absl::Status {
    SHUNT_ASSIGN_OR_RETURN(routes, ShuntctlJson(*n1_, "stat route --window 60s"));
    uint64_t n = 0;
    for (const auto& r : routes["rows"]) n += r.value("requests", uint64_t{0});
    if (n >= 20) return absl::OkStatus();
    return absl::UnavailableError(routes.dump());
  }));
  ASSERT_EQ(routes["rows"].size(), 2u) << routes.dump();
  for (const auto& r : routes["rows"]) {
    EXPECT_EQ(r["namespace"], "demo") << r.dump();
    EXPECT_EQ(r["port"], 8000) << r.dump();
    if (r["route"] == "demo/local-api#read") {
      EXPECT_EQ(r["requests"], 15) << r.dump();
      EXPECT_EQ(r["successes"], 15) << r.dump();
      EXPECT_EQ(r["classes"]["2xx"], 12) << r.dump();
      EXPECT_EQ(r["classes"]["4xx"], 3) << r.dump();
      EXPECT_EQ(r["denied"], 0) << r.dump();
      EXPECT_EQ(r["success_rate"], 1.0) << r.dump();
      EXPECT_TRUE(r.contains("p99_ms")) << r.dump();
    } else {
      EXPECT_EQ(r["route"], "") << r.dump();  // no route matched
      EXPECT_EQ(r["requests"], 5) << r.dump();
      EXPECT_EQ(r["denied"], 5) << r.dump();
      EXPECT_EQ(r["failures"], 5) << r.dump();
      EXPECT_EQ(r["classes"]["4xx"], 5) << r.dump();
    }
  }
  // The table a user reads.
  ASSERT_OK_AND_ASSIGN(std::string table,
                       Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", n1_->api_socket(),
                                       " stat route --window 60s")));
  EXPECT_THAT(table, HasSubstr("ROUTE"));
  EXPECT_THAT(table, HasSubstr("demo/local-api#read"));
  EXPECT_THAT(table, HasSubstr("100.00%"));

  // `stat edge`: the client's edge to demo/local counts requests. (The
  // pod's own row also has the flows of the fixture's probes, from itself
  // to itself: "mixed".)
  ASSERT_OK_AND_ASSIGN(nlohmann::json edge_rows, ShuntctlJson(*n1_, "stat edge --window 60s"));
  bool found = false;
  for (const auto& r : edge_rows["rows"]) {
    if (r["src_name"] != "sa/client" || r["name"] != "sa/local") continue;
    found = true;
    EXPECT_EQ(r["success_unit"], "request") << r.dump();
    EXPECT_EQ(r["successes"], 15) << r.dump();
    EXPECT_EQ(r["failures"], 5) << r.dump();
    EXPECT_EQ(r["requests"], 20) << r.dump();
    EXPECT_EQ(r["success_rate"], 0.75) << r.dump();
  }
  EXPECT_TRUE(found) << edge_rows.dump();

  // `shuntctl top`, piped: one snapshot with the routes under the edges.
  ASSERT_OK_AND_ASSIGN(std::string top, Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ",
                                                        n1_->api_socket(), " top --window 60s")));
  EXPECT_THAT(top, HasSubstr("busiest HTTP routes"));
  EXPECT_THAT(top, HasSubstr("demo/local-api#read"));
  ASSERT_OK_AND_ASSIGN(nlohmann::json top_json, ShuntctlJson(*n1_, "top --window 60s"));
  EXPECT_EQ(top_json["routes"].size(), 2u) << top_json.dump();

  // TrafficMetrics: the client's edge to demo/local, from both ends.
  ASSERT_OK_AND_ASSIGN(nlohmann::json st, n1_->AgentStatus());
  const std::string metrics_addr = st["metrics_addr"].get<std::string>();
  const std::string api = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/demo/pods/";
  ASSERT_OK_AND_ASSIGN(std::string text,
                       HttpGetInNode(*n1_, metrics_addr, api + "local/edges?window=60s"));
  nlohmann::json edges = nlohmann::json::parse(text);
  found = false;
  for (const auto& e : edges["items"]) {
    if (e["edge"]["direction"] != "from" || e["edge"]["resource"]["name"] != "client") continue;
    found = true;
    EXPECT_EQ(Metric(e, "success_count"), "15") << e.dump();
    EXPECT_EQ(Metric(e, "failure_count"), "5") << e.dump();
  }
  EXPECT_TRUE(found) << text;
  ASSERT_OK_AND_ASSIGN(text, HttpGetInNode(*n1_, metrics_addr, api + "client/edges?window=60s"));
  edges = nlohmann::json::parse(text);
  found = false;
  for (const auto& e : edges["items"]) {
    if (e["edge"]["direction"] != "to" || e["edge"]["resource"]["name"] != "local") continue;
    found = true;
    EXPECT_EQ(Metric(e, "success_count"), "15") << e.dump();
    EXPECT_EQ(Metric(e, "failure_count"), "5") << e.dump();
  }
  EXPECT_TRUE(found) << text;
}

}  // namespace
}  // namespace shunt::e2e
