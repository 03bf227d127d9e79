#include "agent/model/l7_settings.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::model {
namespace {

using ::testing::HasSubstr;

Service Svc(std::map<std::string, std::string> annotations) {
  Service s;
  s.namespace_ = "shop";
  s.name = "books";
  s.annotations = std::move(annotations);
  return s;
}

TEST(L7SettingsTest, EveryAnnotationOfTheIssueIsRead) {
  std::vector<Problem> problems;
  L7Settings s = ParseL7Settings(Svc({{"shunt.dev/l7", "http"},
                                      {"shunt.dev/timeout", "2s"},
                                      {"shunt.dev/retries", "2"},
                                      {"shunt.dev/retry-budget", "20%"},
                                      {"shunt.dev/retry-on", "5xx,connect-failure"},
                                      {"shunt.dev/outlier-consecutive-failures", "5"},
                                      {"shunt.dev/outlier-ejection", "30s"}}),
                                 &problems);
  EXPECT_TRUE(problems.empty());
  EXPECT_TRUE(s.enabled);
  EXPECT_EQ(s.timeout_ms, 2000);
  EXPECT_EQ(s.retries, 2);
  EXPECT_DOUBLE_EQ(s.retry_budget, 0.2);
  EXPECT_TRUE(s.retry_on_5xx);
  EXPECT_TRUE(s.retry_on_connect_failure);
  EXPECT_FALSE(s.retry_on_reset);
  EXPECT_EQ(s.outlier_consecutive_failures, 5);
  EXPECT_EQ(s.outlier_ejection_ms, 30000);
}

TEST(L7SettingsTest, AnyL7AnnotationTurnsTheLayerOnAndNoneLeavesItOff) {
  std::vector<Problem> problems;
  EXPECT_FALSE(
      ParseL7Settings(Svc({{"balancer.shunt.dev/algorithm", "random"}}), &problems).enabled);
  L7Settings t = ParseL7Settings(Svc({{"shunt.dev/timeout", "500ms"}}), &problems);
  EXPECT_TRUE(t.enabled);
  EXPECT_EQ(t.timeout_ms, 500);
  EXPECT_TRUE(problems.empty());
}

TEST(L7SettingsTest, ABadValueIsReportedAndTheRestApplies) {
  std::vector<Problem> problems;
  L7Settings s = ParseL7Settings(Svc({{"shunt.dev/timeout", "2 seconds"},
                                      {"shunt.dev/retries", "-1"},
                                      {"shunt.dev/retry-budget", "20"},
                                      {"shunt.dev/retry-on", "5xx,teapot"},
                                      {"shunt.dev/outlier-ejection", "10ms"},
                                      {"shunt.dev/outlier-consecutive-failures", "3"}}),
                                 &problems);
  ASSERT_EQ(problems.size(), 5u);
  EXPECT_THAT(problems[0].ref.ToString(), HasSubstr("books"));
  std::string all;
  for (const Problem& p : problems) all += p.reason + "\n";
  EXPECT_THAT(all,
              HasSubstr("metadata.annotations.shunt.dev/timeout: '2 seconds' is not a duration"));
  EXPECT_THAT(all, HasSubstr("shunt.dev/retries: '-1' is not a whole number from 0 to 10"));
  EXPECT_THAT(all, HasSubstr("shunt.dev/retry-budget: '20' is not a percentage"));
  EXPECT_THAT(all, HasSubstr("shunt.dev/retry-on: '5xx,teapot'"));
  EXPECT_THAT(all, HasSubstr("shunt.dev/outlier-ejection: '10ms' is not a duration between 1s"));
  EXPECT_THAT(all, HasSubstr("the default applies"));
  EXPECT_EQ(s, (L7Settings{.enabled = true, .outlier_consecutive_failures = 3}));
}

TEST(L7SettingsTest, DurationsAreWhatKubernetesWrites) {
  EXPECT_EQ(ParseDurationMs("1.5s"), 1500);
  EXPECT_EQ(ParseDurationMs("1m"), 60000);
  EXPECT_EQ(ParseDurationMs("250ms"), 250);
  EXPECT_EQ(ParseDurationMs("1h"), 3600000);
  for (const char* bad : {"", "s", "2", "1e3s", "+2s", "-2s", "infs", "2 s", "2sec"})
    EXPECT_EQ(ParseDurationMs(bad), std::nullopt) << bad;
}

}  // namespace
}  // namespace shunt::model
