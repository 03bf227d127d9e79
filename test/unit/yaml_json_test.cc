// YamlToJson: the file source's border, YAML in, API-server JSON out.
#include "agent/source/yaml_json.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::source {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

absl::StatusOr<Json> Convert(const std::string& yaml) { return YamlToJson(YAML::Load(yaml)); }

TEST(YamlToJsonTest, PlainScalarsResolveQuotedOnesStayStrings) {
  auto j = Convert(R"(
int: 80
neg: -3
hex: 0x1F
float: 1.5
exp: 1e3
yes_word: yes
off_word: Off
t: true
nul: ~
empty:
quoted_int: "80"
quoted_bool: 'true'
name: n
ip: 10.0.0.1
version: 1.10.2
tagged: !!str 42
)");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ((*j)["int"], 80);
  EXPECT_EQ((*j)["neg"], -3);
  EXPECT_EQ((*j)["hex"], 31);
  EXPECT_EQ((*j)["float"], 1.5);
  EXPECT_EQ((*j)["exp"], 1000.0);
  EXPECT_EQ((*j)["yes_word"], true);
  EXPECT_EQ((*j)["off_word"], false);
  EXPECT_EQ((*j)["t"], true);
  EXPECT_TRUE((*j)["nul"].is_null());
  EXPECT_TRUE((*j)["empty"].is_null());
  EXPECT_EQ((*j)["quoted_int"], "80");
  EXPECT_EQ((*j)["quoted_bool"], "true");
  EXPECT_EQ((*j)["name"], "n") << "y and n are names, not answers";
  EXPECT_EQ((*j)["ip"], "10.0.0.1");
  EXPECT_EQ((*j)["version"], "1.10.2");
  EXPECT_EQ((*j)["tagged"], "42");
}

TEST(YamlToJsonTest, ListsAndMapsNest) {
  auto j = Convert("a: [1, {b: [x, y]}]\n");
  ASSERT_TRUE(j.ok()) << j.status();
  EXPECT_EQ(*j, Json::parse(R"({"a": [1, {"b": ["x", "y"]}]})"));
}

TEST(YamlToJsonTest, DuplicateKeysAreRejectedWithTheirLine) {
  auto j = Convert("a: 1\nb: 2\na: 3\n");
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("line 3: key 'a' is given twice"));
}

TEST(YamlToJsonTest, InvalidUtf8IsRejectedNotPassedOn) {
  // Regression: such a value used to reach the agent's JSON output, whose
  // serializer throws on it (the agent ended).
  auto j = Convert("metadata:\n  name: \"caf\\xE9\"\n  raw: caf\xE9\n");
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("not valid UTF-8"));
  EXPECT_TRUE(Convert("name: café ☕\n").ok());
}

TEST(YamlToJsonTest, ExplicitTagsMustFit) {
  auto j = Convert("port: !!int eighty\n");
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("'eighty' is not a valid !!int"));
}

TEST(YamlToJsonTest, AliasBombsStopAtTheNodeLimit) {
  std::string yaml = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'h'; ++c) {
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) yaml += std::string(i ? ", *" : "*") + prev;
    yaml += "]\n";
    prev = c;
  }
  auto j = Convert(yaml);  // 10^8 values if expanded
  EXPECT_EQ(j.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(j.status().message(), HasSubstr("more than"));
}

}  // namespace
}  // namespace shunt::source
