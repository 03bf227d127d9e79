// RequestWindows: the proxy's per-second request reports folded into pod
// edge x route windows; MergeRequests making the request the unit of an
// edge the L7 layer saw.
#include "agent/telemetry/request_windows.h"

#include "agent/telemetry/stat.h"
#include "test/unit/flow_test_util.h"

namespace shunt::telemetry {
namespace {

using namespace flow_test;
using Json = nlohmann::json;

constexpr int64_t kT0 = 1'700'000'000'000'000'000;  // on a 10 s slice boundary

// One report entry: `statuses` as the proxy counts them, each request
// taking `ms` milliseconds.
Json Entry(const std::string& client, const std::string& server, const std::string& route,
           std::array<uint64_t, 6> classes, uint64_t denied, uint64_t ms) {
  uint64_t n = 0;
  for (uint64_t c : classes) n += c;
  const uint64_t ns = ms * 1000000;
  return {{"client", client},   {"server", server},
          {"port", 8080},       {"route", route},
          {"classes", classes}, {"denied", denied},
          {"retries", 1},       {"hist", Json::array({Json::array({shunt_hist_bucket(ns), n})})},
          {"sum_ns", ns * n}};
}

TEST(RequestWindowsTest, CountsPerPodEdgeAndRouteExactly) {
  RequestWindows w;
  w.SetDirectory(PeerDirectory::Build(DemoPods()));
  // web-1 -> api-1: 7 answered 2xx, 2 denied by policy (4xx), 1 5xx.
  w.Ingest(Json::array({Entry("10.0.0.1", "10.0.1.1", "demo/api#read", {0, 0, 7, 0, 0, 0}, 0, 2),
                        Entry("10.0.0.1", "10.0.1.1", "demo/api#write", {0, 0, 0, 0, 2, 1}, 2, 4)}),
           kT0 + 1'000'000'000);
  w.Ingest(Json::array({Entry("10.0.0.1", "10.0.1.1", "demo/api#read", {0, 0, 3, 0, 0, 0}, 0, 2)}),
           kT0 + 2'000'000'000);
  const auto win = w.Window(kT0 + 3'000'000'000, 30);
  ASSERT_EQ(win.size(), 2u);
  for (const auto& [k, t] : win) {
    EXPECT_EQ(k.edge.src_pod, "web-1");
    EXPECT_EQ(k.edge.src_workload, "deployment/web");
    EXPECT_EQ(k.edge.dst_pod, "api-1");
    EXPECT_EQ(k.port, 8080);
    if (k.route == "demo/api#read") {
      EXPECT_EQ(t.requests(), 10u);
      EXPECT_EQ(t.successes(), 10u);
      EXPECT_EQ(t.failures(), 0u);
      EXPECT_EQ(t.retries, 2u);
      EXPECT_EQ(t.latency.count(), 10u);
      EXPECT_NEAR(t.latency.Quantile(0.5), 2e6, 2e6 * 0.125);
    } else {
      EXPECT_EQ(k.route, "demo/api#write");
      EXPECT_EQ(t.requests(), 3u);
      EXPECT_EQ(t.failures(), 3u);  // two denials and a 5xx
      EXPECT_EQ(t.denied, 2u);
    }
  }
}

TEST(RequestWindowsTest, SlicesAgeOutOfTheWindowAndTheMinute) {
  RequestWindows w;
  w.SetDirectory(PeerDirectory::Build(DemoPods()));
  w.Ingest(Json::array({Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1)}), kT0);
  w.Ingest(Json::array({Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 1, 0, 0, 0}, 0, 1)}),
           kT0 + 25'000'000'000);
  // 10 s from t0+25 s covers the slice [t0+20, t0+30) only.
  auto win = w.Window(kT0 + 25'000'000'000, 10);
  ASSERT_EQ(win.size(), 1u);
  EXPECT_EQ(win[0].second.requests(), 1u);
  win = w.Window(kT0 + 25'000'000'000, 60);
  ASSERT_EQ(win.size(), 1u);
  EXPECT_EQ(win[0].second.requests(), 6u);
  // A minute later nothing is left, and the series is forgotten.
  w.Ingest(Json::array(), kT0 + 95'000'000'000);
  EXPECT_TRUE(w.Window(kT0 + 95'000'000'000, 60).empty());
}

TEST(RequestWindowsTest, MalformedEntriesCountNowhere) {
  RequestWindows w;
  w.SetDirectory(PeerDirectory::Build(DemoPods()));
  Json bad_hist = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  bad_hist["hist"] = Json::array({Json::array({SHUNT_HIST_BUCKETS, 5})});
  Json short_hist = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  short_hist["hist"][0][1] = 4;  // a request without its latency
  Json bad_addr = Entry("10.0.0.1", "fd00::1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  Json negative = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  negative["classes"][2] = -5;
  Json denied_not_4xx = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 1, 1);
  Json big_port = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  big_port["port"] = 70000;
  Json client_not_text = Entry("10.0.0.1", "10.0.1.1", "r", {0, 0, 5, 0, 0, 0}, 0, 1);
  client_not_text["client"] = 7;  // counted, not thrown
  w.Ingest(Json::array({bad_hist, short_hist, bad_addr, negative, denied_not_4xx, big_port, 7,
                        Json::object(), client_not_text}),
           kT0);
  EXPECT_EQ(w.malformed(), 9u);
  EXPECT_TRUE(w.Window(kT0, 60).empty());
  w.Ingest(Json::object(), kT0);  // not an array: nothing
  EXPECT_EQ(w.malformed(), 9u);
}

TEST(RequestWindowsTest, UnknownAddressesAreUnmeshedAndTheNumberOfSeriesIsBounded) {
  RequestWindows w;
  w.SetDirectory(PeerDirectory::Build(DemoPods()));
  Json many = Json::array();
  for (size_t i = 0; i < RequestWindows::kMaxKeys + 5; ++i)
    many.push_back(
        Entry("10.0.0.1", "192.168.7.7", "r" + std::to_string(i), {0, 0, 1, 0, 0, 0}, 0, 1));
  w.Ingest(many, kT0);
  const auto win = w.Window(kT0, 60);
  EXPECT_EQ(win.size(), RequestWindows::kMaxKeys);
  EXPECT_EQ(w.evicted(), 5u);
  EXPECT_EQ(win[0].first.edge.dst_workload, "unmeshed");
  EXPECT_EQ(win[0].first.edge.dst_pod, "");
}

TEST(RequestWindowsTest, MergeMakesTheRequestTheUnitWhereTheProxySawRequests) {
  const PodEdgeKey seen{"demo", "web-1", "deployment/web", "demo", "api-1", "statefulset/api"};
  const PodEdgeKey kernel_only{"demo", "web-2", "deployment/web",
                               "demo", "api-1", "statefulset/api"};
  const PodEdgeKey proxy_only{"demo", "web-3", "deployment/web-canary",
                              "demo", "api-1", "statefulset/api"};
  WindowTotals flow;
  flow.successes = 1;
  flow.flows = 1;
  flow.mtls = 1;
  flow.response.Add(9'000'000, 4);
  std::vector<std::pair<PodEdgeKey, WindowTotals>> flows = {{seen, flow}, {kernel_only, flow}};
  RequestTotals req;
  req.by_class = {1, 0, 6, 0, 2, 1};
  req.denied = 2;
  req.latency.Add(1'000'000, 10);
  const std::vector<std::pair<RouteEdgeKey, RequestTotals>> requests = {
      {{.edge = seen, .port = 8080, .route = "a"}, req},
      {{.edge = seen, .port = 8080, .route = "b"}, req},
      {{.edge = proxy_only, .port = 8080, .route = "a"}, req}};
  const auto merged = MergeRequests(flows, requests);
  ASSERT_EQ(merged.size(), 3u);
  for (const auto& [k, t] : merged) {
    if (k == kernel_only) {
      EXPECT_FALSE(t.per_request);
      EXPECT_EQ(t.successes, 1u);
      EXPECT_EQ(t.response.count(), 4u);
    } else if (k == seen) {
      EXPECT_TRUE(t.per_request);
      EXPECT_EQ(t.successes, 12u);  // 2 x (2xx + 4xx not denied)
      EXPECT_EQ(t.failures, 8u);    // 2 x (no response + denied + 5xx)
      EXPECT_EQ(t.response.count(), 20u);
      EXPECT_EQ(t.flows, 1u);  // the kernel's flows and mTLS share stay
      EXPECT_EQ(t.mtls, 1u);
    } else {
      EXPECT_EQ(k, proxy_only);
      EXPECT_TRUE(t.per_request);
      EXPECT_EQ(t.successes, 6u);
      EXPECT_EQ(t.failures, 4u);
      EXPECT_EQ(t.flows, 0u);
    }
  }
}

// `shuntctl stat route`'s rows: per destination workload, port and route;
// and the pod rows' success made per request.
TEST(RequestWindowsTest, StatShowsRoutesAndMakesTheRequestTheUnit) {
  const Clock clock;
  FlowAggregator flows({.clock = &clock.fake});
  RequestWindows w;
  w.SetDirectory(PeerDirectory::Build(DemoPods()));
  w.Ingest(Json::array({Entry("10.0.0.1", "10.0.1.1", "demo/api#read", {0, 0, 6, 0, 1, 0}, 0, 2),
                        Entry("10.0.0.2", "10.0.1.1", "demo/api#read", {0, 0, 4, 0, 0, 0}, 0, 2),
                        Entry("10.0.0.1", "10.0.1.1", "", {0, 0, 0, 0, 3, 0}, 3, 1)}),
           kT0 + 1'000'000'000);
  auto routes = StatJson(flows, kT0 + 5'000'000'000, 10, "route", &w);
  ASSERT_TRUE(routes.ok()) << routes.status();
  ASSERT_EQ((*routes)["rows"].size(), 2u) << routes->dump();
  const Json& none = (*routes)["rows"][0];  // "" sorts first
  EXPECT_EQ(none["route"], "");
  EXPECT_EQ(none["requests"], 3);
  EXPECT_EQ(none["denied"], 3);
  EXPECT_EQ(none["success_rate"], 0.0);
  const Json& read = (*routes)["rows"][1];
  EXPECT_EQ(read["namespace"], "demo");
  EXPECT_EQ(read["name"], "statefulset/api");
  EXPECT_EQ(read["port"], 8080);
  EXPECT_EQ(read["route"], "demo/api#read");
  EXPECT_EQ(read["requests"], 11);  // both clients
  EXPECT_EQ(read["successes"], 11);
  EXPECT_EQ(read["classes"]["2xx"], 10);
  EXPECT_EQ(read["classes"]["4xx"], 1);
  EXPECT_DOUBLE_EQ(read["requests_per_s"].get<double>(), 11 / 5.0);
  EXPECT_TRUE(read.contains("p99_ms"));

  auto pods = StatJson(flows, kT0 + 5'000'000'000, 10, "pod", &w);
  ASSERT_TRUE(pods.ok());
  ASSERT_EQ((*pods)["rows"].size(), 1u) << pods->dump();
  const Json& api = (*pods)["rows"][0];
  EXPECT_EQ(api["name"], "api-1");
  EXPECT_EQ(api["success_unit"], "request");
  EXPECT_EQ(api["successes"], 11);
  EXPECT_EQ(api["failures"], 3);
  EXPECT_EQ(api["requests"], 14);
  EXPECT_EQ(api["flows"], 0);
  EXPECT_FALSE(StatJson(flows, kT0, 10, "routes", &w).ok());
}

}  // namespace
}  // namespace shunt::telemetry
