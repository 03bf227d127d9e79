// FlagSet: exact flags, both value forms, typed values, and the mistakes
// a user makes, each an InvalidArgument naming the flag as typed.
#include "tools/common/flag_set.h"

#include <climits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A flag set of each kind, with its destinations.
struct Fixture {
  std::string bpffs = "/sys/fs/bpf/shunt";
  std::string output = "table";
  std::string api_socket;
  int port = 0;
  double seconds = 3;
  bool follow = false;
  std::vector<std::string> agent_flags;
  FlagSet flags;

  Fixture() {
    flags.String("bpffs", &bpffs);
    flags.String("api-socket", &api_socket);
    flags.Choice("output", &output, {"json", "table"}).Short('o');
    flags.Int("port", &port, 1, 65535);
    flags.Double("bulk-seconds", &seconds, 0.1, 3600);
    flags.Bool("follow", &follow).Short('f');
    flags.Repeated("agent-flag", &agent_flags).ValueMayStartWithDash();
  }

  absl::StatusOr<FlagSet::Result> Parse(const std::vector<std::string>& args) {
    return flags.Parse(args);
  }
};

// The message of a failed parse ("" when it did not fail).
std::string Error(const absl::StatusOr<FlagSet::Result>& r) {
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

TEST(FlagSetTest, ExactNameMatches) {
  Fixture f;
  auto r = f.Parse({"--bpffs", "/x", "status"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(f.bpffs, "/x");
  EXPECT_THAT(r->args, ElementsAre("status"));
  EXPECT_THAT(r->set, ElementsAre("bpffs"));
  EXPECT_FALSE(r->help);
}

TEST(FlagSetTest, BothValueForms) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--bpffs=/a", "--port", "6379"}).ok());
  EXPECT_EQ(f.bpffs, "/a");
  EXPECT_EQ(f.port, 6379);
  ASSERT_TRUE(f.Parse({"--bpffs", "/b", "--port=80"}).ok());
  EXPECT_EQ(f.bpffs, "/b");
  EXPECT_EQ(f.port, 80);
  // Only the first '=' splits; an explicit empty value is a value.
  ASSERT_TRUE(f.Parse({"--bpffs=a=b"}).ok());
  EXPECT_EQ(f.bpffs, "a=b");
  ASSERT_TRUE(f.Parse({"--bpffs="}).ok());
  EXPECT_EQ(f.bpffs, "");
}

TEST(FlagSetTest, ShortSpellingTakesBothValueForms) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"-o", "json"}).ok());
  EXPECT_EQ(f.output, "json");
  ASSERT_TRUE(f.Parse({"-o=table"}).ok());
  EXPECT_EQ(f.output, "table");
  ASSERT_TRUE(f.Parse({"--output", "json"}).ok());
  EXPECT_EQ(f.output, "json");
}

TEST(FlagSetTest, PrefixOfAFlagIsRejected) {
  // {argument, the flag as the message names it}
  const std::pair<std::string, std::string> cases[] = {
      {"--bpffsX", "--bpffsX"}, {"--bpf", "--bpf"},     {"--bpffsX=/x", "--bpffsX"}, {"--b", "--b"},
      {"--portX", "--portX"},   {"--follo", "--follo"}, {"--output-", "--output-"}};
  for (const auto& [arg, name] : cases) {
    Fixture f;
    EXPECT_THAT(Error(f.Parse({arg, "/tmp/x", "status"})), HasSubstr("unknown flag " + name))
        << arg;
    EXPECT_EQ(f.bpffs, "/sys/fs/bpf/shunt") << arg;
  }
}

TEST(FlagSetTest, UnknownFlagIsRejectedWithASuggestionWhenOneIsClose) {
  Fixture f;
  EXPECT_EQ(Error(f.Parse({"--bpffsX", "/x"})), "unknown flag --bpffsX (did you mean --bpffs?)");
  EXPECT_EQ(Error(f.Parse({"--bpf"})), "unknown flag --bpf (did you mean --bpffs?)");
  EXPECT_EQ(Error(f.Parse({"--frobnicate"})), "unknown flag --frobnicate");
  EXPECT_EQ(Error(f.Parse({"-x"})), "unknown flag -x");
  EXPECT_EQ(Error(f.Parse({"-ojson"})), "unknown flag -ojson");
  EXPECT_EQ(Error(f.Parse({"-bpffs", "/x"})), "unknown flag -bpffs (did you mean --bpffs?)");
  EXPECT_EQ(Error(f.Parse({"--"})), "");  // the end of the flags, not a flag
}

TEST(FlagSetTest, MissingValueIsRejected) {
  Fixture f;
  EXPECT_EQ(Error(f.Parse({"status", "--bpffs"})), "--bpffs needs a value");
  EXPECT_EQ(Error(f.Parse({"-o"})), "-o needs a value");
  // The next argument is a flag: the value was forgotten, not "--port".
  EXPECT_EQ(Error(f.Parse({"--bpffs", "--port", "1"})), "--bpffs needs a value");
  EXPECT_EQ(Error(f.Parse({"--bpffs", "-f"})), "--bpffs needs a value");
  EXPECT_EQ(Error(f.Parse({"--bpffs", "--"})), "--bpffs needs a value");
}

TEST(FlagSetTest, ValueThatLooksLikeAFlagWhereTheFlagAllowsIt) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--agent-flag", "--telemetry=false", "--agent-flag=--mode=enforce"}).ok());
  EXPECT_THAT(f.agent_flags, ElementsAre("--telemetry=false", "--mode=enforce"));
  // A negative number is a value, not a flag (and here out of range).
  EXPECT_EQ(Error(f.Parse({"--port", "-1"})), "--port -1: expected an integer in [1, 65535]");
}

TEST(FlagSetTest, BadIntIsRejected) {
  for (const char* v : {"abc", "", "6379x", "1.5", "0", "65536", "99999999999"}) {
    Fixture f;
    EXPECT_EQ(Error(f.Parse({"--port", v})),
              absl::StrCat("--port ", v, ": expected an integer in [1, 65535]"))
        << v;
    EXPECT_EQ(f.port, 0) << v;
  }
  Fixture f;
  EXPECT_EQ(Error(f.Parse({"--port=x"})), "--port x: expected an integer in [1, 65535]");
}

TEST(FlagSetTest, IntWithOnlyALowerBound) {
  int n = 0;
  FlagSet flags;
  flags.Int("rr-iterations", &n, 1000, INT_MAX);
  EXPECT_EQ(Error(flags.Parse({"--rr-iterations", "10"})),
            "--rr-iterations 10: expected an integer >= 1000");
  ASSERT_TRUE(flags.Parse({"--rr-iterations", "200000"}).ok());
  EXPECT_EQ(n, 200000);
}

TEST(FlagSetTest, DoubleInRange) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--bulk-seconds", "0.5"}).ok());
  EXPECT_DOUBLE_EQ(f.seconds, 0.5);
  for (const char* v : {"x", "0.01", "3601", "nan", "inf"})
    EXPECT_EQ(Error(f.Parse({"--bulk-seconds", v})),
              absl::StrCat("--bulk-seconds ", v, ": expected a number in [0.1, 3600]"))
        << v;
  EXPECT_DOUBLE_EQ(f.seconds, 0.5);
}

TEST(FlagSetTest, ChoiceNamesTheChoices) {
  Fixture f;
  EXPECT_EQ(Error(f.Parse({"-o", "yaml"})), "-o yaml: expected json or table");
  EXPECT_EQ(Error(f.Parse({"--output=JSON"})), "--output JSON: expected json or table");
  std::string only;
  FlagSet three;
  three.Choice("only", &only, {"shunt", "iptables", "direct"});
  EXPECT_EQ(Error(three.Parse({"--only", "x"})), "--only x: expected shunt, iptables or direct");
}

TEST(FlagSetTest, BoolFlags) {
  Fixture f;
  ASSERT_TRUE(f.Parse({"--follow", "drops"}).ok());  // takes no value: "drops" is positional
  EXPECT_TRUE(f.follow);
  ASSERT_TRUE(f.Parse({"--follow=false"}).ok());
  EXPECT_FALSE(f.follow);
  ASSERT_TRUE(f.Parse({"-f"}).ok());
  EXPECT_TRUE(f.follow);
  ASSERT_TRUE(f.Parse({"--follow=0"}).ok());
  EXPECT_FALSE(f.follow);
  ASSERT_TRUE(f.Parse({"--follow=1"}).ok());
  EXPECT_TRUE(f.follow);
  EXPECT_EQ(Error(f.Parse({"--follow=yes"})), "--follow=yes: expected true or false (or no value)");
  auto r = f.Parse({"drops", "--follow", "x"});
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->args, ElementsAre("drops", "x"));
}

TEST(FlagSetTest, PositionalArgumentsAnywhereAndAfterDoubleDash) {
  Fixture f;
  auto r = f.Parse({"maps", "-o", "json", "dump", "-", "sockhash", "--", "--bpffs", "-o"});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->args, ElementsAre("maps", "dump", "-", "sockhash", "--bpffs", "-o"));
  EXPECT_EQ(f.bpffs, "/sys/fs/bpf/shunt");
  EXPECT_THAT(r->set, ElementsAre("output"));
}

TEST(FlagSetTest, LastValueWinsAndRepeatedAppends) {
  Fixture f;
  ASSERT_TRUE(
      f.Parse({"--bpffs", "/a", "--bpffs", "/b", "--agent-flag", "x", "--agent-flag", "y"}).ok());
  EXPECT_EQ(f.bpffs, "/b");
  EXPECT_THAT(f.agent_flags, ElementsAre("x", "y"));
}

TEST(FlagSetTest, HelpStopsParsing) {
  for (const char* help : {"-h", "--help"}) {
    Fixture f;
    auto r = f.Parse({"--port", "1", help, "--no-such-flag"});
    ASSERT_TRUE(r.ok()) << help << ": " << r.status();
    EXPECT_TRUE(r->help);
  }
  Fixture f;
  EXPECT_THAT(Error(f.Parse({"-help"})), HasSubstr("unknown flag -help"));
  auto r = f.Parse({"help"});  // a word, for the program to interpret
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->help);
  EXPECT_THAT(r->args, ElementsAre("help"));
}

TEST(FlagSetTest, ArgvSkipsTheProgramName) {
  Fixture f;
  const char* argv[] = {"shuntctl", "--port=7", "status"};
  auto r = f.flags.Parse(3, argv);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(f.port, 7);
  EXPECT_THAT(r->args, ElementsAre("status"));
  EXPECT_THAT(f.flags.Parse(1, argv)->args, IsEmpty());
}

TEST(FlagSetDeathTest, RegisteringANameTwiceIsABug) {
  std::string a, b;
  FlagSet flags;
  flags.String("bpffs", &a);
  EXPECT_DEATH(flags.String("bpffs", &b), "registered twice");
  EXPECT_DEATH(flags.String("help", &b), "reserved");
}

}  // namespace
}  // namespace shunt::cli
