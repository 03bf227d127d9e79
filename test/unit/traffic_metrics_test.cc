// The SMI TrafficMetrics API's parsing of its path and ?window=
// (agent/telemetry/traffic_metrics.h); what it answers with real flows is
// checked end to end (test/e2e, against the schema).
#include "agent/telemetry/traffic_metrics.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::telemetry {
namespace {

using ::testing::HasSubstr;

constexpr char kNamespaces[] = "/apis/metrics.smi-spec.io/v1alpha1/namespaces";

class TrafficMetricsTest : public ::testing::Test {
 protected:
  HttpAnswer Serve(const std::string& path, const std::string& query) {
    return ServeTrafficMetrics(path, query, flows_, 1'700'000'000'000'000'000);
  }
  lib::FakeClock clock_{5'000'000'000'000, 1'700'000'000'000'000'000};
  FlowAggregator flows_{{.clock = &clock_}};
};

TEST_F(TrafficMetricsTest, WindowsInSecondsOrMinutesUpToSixtySeconds) {
  EXPECT_EQ(Serve(kNamespaces, "").status, 200);
  EXPECT_EQ(Serve(kNamespaces, "window=30s").status, 200);
  EXPECT_EQ(Serve(kNamespaces, "window=1m").status, 200);
  for (const char* bad : {"window=0s", "window=61s", "window=2m", "window=0m", "window=-1m",
                          "window=30", "window=m", "window=xs"}) {
    const HttpAnswer a = Serve(kNamespaces, bad);
    EXPECT_EQ(a.status, 400) << bad;
    EXPECT_THAT(a.body, HasSubstr("expected a duration from 1s to 60s")) << bad;
  }
}

// Found by reading the code while writing the fuzz targets (test/fuzz
// http_request reaches it): minutes were multiplied by 60 before the range
// check, so ?window=99999999m (on the metrics port, open to any client that
// reaches it) overflowed int: undefined behaviour (UBSan reports it here).
TEST_F(TrafficMetricsTest, HugeMinuteWindowsAreRefusedWithoutOverflow) {
  for (const char* bad : {"window=99999999m", "window=-99999999m", "window=2147483647m",
                          "window=99999999999999999999m"}) {
    EXPECT_EQ(Serve(kNamespaces, bad).status, 400) << bad;
  }
}

TEST_F(TrafficMetricsTest, UnknownPathsAndKindsAre404) {
  EXPECT_EQ(Serve("/apis/other", "").status, 404);
  EXPECT_EQ(Serve(std::string(kNamespaces) + "/demo/widgets", "").status, 404);
  EXPECT_EQ(Serve(std::string(kNamespaces) + "/demo/pods/a/edges/more", "").status, 404);
  EXPECT_EQ(Serve(std::string(kNamespaces) + "/demo/pods/a/edges", "").status, 200);
}

}  // namespace
}  // namespace shunt::telemetry
