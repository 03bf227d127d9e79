// shuntctl's command line: flags match exactly, each command takes only the
// flags it reads, and every command line in the docs, scripts and e2e tests
// parses as before.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/shuntctl/args.h"

namespace shunt::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

absl::StatusOr<Options> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "shuntctl");
  return ParseArgs(static_cast<int>(args.size()), args.data());
}

// The parse of a command line that must succeed.
Options Parsed(std::vector<const char*> args) {
  auto o = Parse(std::move(args));
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : Options{};
}

std::string Error(const absl::StatusOr<Options>& o) {
  if (o.ok()) return "";
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << o.status();
  return std::string(o.status().message());
}

TEST(ShuntctlArgsTest, PrefixOfAGlobalFlagIsNotTheFlag) {
  EXPECT_THAT(Error(Parse({"--bpffsX", "/tmp", "status"})), HasSubstr("unknown flag --bpffsX"));
  EXPECT_THAT(Error(Parse({"--bpffsX=/tmp", "status"})), HasSubstr("unknown flag --bpffsX"));
  EXPECT_THAT(Error(Parse({"--bpf", "/tmp", "status"})), HasSubstr("unknown flag --bpf"));
  EXPECT_THAT(Error(Parse({"--api-socketX", "/x", "status"})),
              HasSubstr("unknown flag --api-socketX"));
  EXPECT_THAT(Error(Parse({"--outputs", "json", "status"})), HasSubstr("unknown flag --outputs"));
}

TEST(ShuntctlArgsTest, PrefixOfACommandFlagIsNotTheFlag) {
  EXPECT_THAT(Error(Parse({"flows", "--portX", "80"})), HasSubstr("unknown flag --portX"));
  EXPECT_THAT(Error(Parse({"flows", "--tox=demo/server"})), HasSubstr("unknown flag --tox"));
  EXPECT_THAT(Error(Parse({"top", "--intervals", "2s"})), HasSubstr("unknown flag --intervals"));
  EXPECT_THAT(Error(Parse({"flows", "--fo"})), HasSubstr("unknown flag --fo"));
}

TEST(ShuntctlArgsTest, GlobalFlagsInBothFormsBeforeOrAfterTheCommand) {
  Options a = Parsed({"--bpffs", "/sys/fs/bpf/shunt-demo", "endpoints"});
  EXPECT_EQ(a.bpffs, "/sys/fs/bpf/shunt-demo");
  EXPECT_EQ(a.api_socket, "/run/shunt/agent.sock");
  EXPECT_THAT(a.args, ElementsAre("endpoints"));
  Options b = Parsed({"status", "--bpffs=/b", "--api-socket=/s.sock"});
  EXPECT_EQ(b.bpffs, "/b");
  EXPECT_EQ(b.api_socket, "/s.sock");
  Options c = Parsed({"--api-socket", "/s.sock", "drops", "-o", "json"});
  EXPECT_EQ(c.api_socket, "/s.sock");
  EXPECT_TRUE(c.json);
}

TEST(ShuntctlArgsTest, OutputFormat) {
  for (std::vector<const char*> json : {std::vector<const char*>{"status", "-o", "json"},
                                        {"status", "-o=json"},
                                        {"status", "--output", "json"},
                                        {"status", "--output=json"},
                                        {"-o", "json", "status"}}) {
    Options o = Parsed(json);
    EXPECT_TRUE(o.json);
    EXPECT_THAT(o.args, ElementsAre("status"));
  }
  Options t = Parsed({"status", "-o", "table"});
  EXPECT_FALSE(t.json);
  Options d = Parsed({"status"});
  EXPECT_FALSE(d.json);
  EXPECT_EQ(Error(Parse({"status", "-o", "yaml"})), "-o yaml: expected json or table");
  EXPECT_EQ(Error(Parse({"status", "-o"})), "-o needs a value");
}

TEST(ShuntctlArgsTest, CommandLinesOfTheDocsAndTests) {
  Options check = Parsed({"policy", "check", "--from", "demo/client", "--to", "demo/server",
                          "--port", "6379", "--proto", "udp"});
  EXPECT_THAT(check.args, ElementsAre("policy", "check"));
  EXPECT_EQ(
      check.flags,
      (std::map<std::string, std::string>{
          {"from", "demo/client"}, {"to", "demo/server"}, {"port", "6379"}, {"proto", "udp"}}));
  Options flows = Parsed({"flows", "--follow", "--port", "7109", "-o", "json"});
  EXPECT_TRUE(flows.follow);
  EXPECT_TRUE(flows.json);
  EXPECT_EQ(flows.flags, (std::map<std::string, std::string>{{"port", "7109"}}));
  Options f2 = Parsed({"flows", "-o", "json", "--state", "closed", "--to", "demo/server",
                       "--verdict=denied", "--path", "tcp"});
  EXPECT_EQ(
      f2.flags,
      (std::map<std::string, std::string>{
          {"state", "closed"}, {"to", "demo/server"}, {"verdict", "denied"}, {"path", "tcp"}}));
  Options drops = Parsed({"drops", "-f"});
  EXPECT_TRUE(drops.follow);
  Options stat = Parsed({"stat", "edge", "--window", "60s"});
  EXPECT_THAT(stat.args, ElementsAre("stat", "edge"));
  EXPECT_EQ(stat.flags, (std::map<std::string, std::string>{{"window", "60s"}}));
  Options top = Parsed({"top", "--window=30s", "--interval", "2s"});
  EXPECT_EQ(top.flags, (std::map<std::string, std::string>{{"window", "30s"}, {"interval", "2s"}}));
  Options dump = Parsed({"maps", "dump", "sockhash", "-o", "json"});
  EXPECT_THAT(dump.args, ElementsAre("maps", "dump", "sockhash"));
  EXPECT_THAT(dump.flags, IsEmpty());
  Options lb = Parsed({"lb", "explain", "demo/server"});
  EXPECT_THAT(lb.args, ElementsAre("lb", "explain", "demo/server"));
}

TEST(ShuntctlArgsTest, ACommandTakesOnlyTheFlagsItReads) {
  EXPECT_EQ(Error(Parse({"status", "--port", "5"})), "--port does not apply to 'status'");
  EXPECT_EQ(Error(Parse({"policy", "--from", "a/b"})), "--from does not apply to 'policy'");
  EXPECT_EQ(Error(Parse({"stat", "--interval", "2s"})), "--interval does not apply to 'stat'");
  EXPECT_EQ(Error(Parse({"-f", "flows", "--window", "30s"})), "--window does not apply to 'flows'");
  EXPECT_EQ(Error(Parse({"endpoints", "-f"})), "--follow does not apply to 'endpoints'");
  // An unknown command is reported as such by the caller, not as its flags.
  Options unknown = Parsed({"frobnicate", "--port", "5"});
  EXPECT_THAT(unknown.args, ElementsAre("frobnicate"));
}

TEST(ShuntctlArgsTest, MissingOrBadValuesNameTheFlag) {
  EXPECT_EQ(Error(Parse({"status", "--bpffs"})), "--bpffs needs a value");
  EXPECT_EQ(Error(Parse({"flows", "--to", "--port", "80"})), "--to needs a value");
  EXPECT_EQ(Error(Parse({"flows", "--port", "abc"})),
            "--port abc: expected an integer in [1, 65535]");
  EXPECT_EQ(Error(Parse({"policy", "check", "--port=0"})),
            "--port 0: expected an integer in [1, 65535]");
  EXPECT_EQ(Error(Parse({"flows", "--verdict", "maybe"})),
            "--verdict maybe: expected allowed, l7, audit, denied or unmeshed");
  EXPECT_EQ(Error(Parse({"flows", "--follow=maybe"})),
            "--follow=maybe: expected true or false (or no value)");
}

TEST(ShuntctlArgsTest, HelpAndNoCommand) {
  for (std::vector<const char*> help : {std::vector<const char*>{"--help"},
                                        {"-h"},
                                        {"help"},
                                        {"status", "--help"},
                                        {"policy", "help"}}) {
    Options o = Parsed(help);
    EXPECT_TRUE(o.help);
  }
  EXPECT_THAT(Error(Parse({})), HasSubstr("no command given"));
  EXPECT_THAT(Error(Parse({"-o", "json"})), HasSubstr("no command given"));
}

}  // namespace
}  // namespace shunt::ctl
