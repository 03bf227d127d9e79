// NormalizeDashedFlags: --config-dir=x is accepted as --config_dir=x.
#include "agent/lib/dashed_flags.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace shunt::lib {
namespace {

// Runs the rewrite over mutable copies of `args` (argv[0] included) and
// returns the result.
std::vector<std::string> Normalize(const std::vector<std::string>& args) {
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  NormalizeDashedFlags(static_cast<int>(args.size()), argv.data());
  return std::vector<std::string>(argv.begin(), argv.end() - 1);
}

struct Case {
  const char* description;
  std::vector<std::string> in;
  std::vector<std::string> want;
};

TEST(NormalizeDashedFlagsTest, Table) {
  const Case cases[] = {
      {"name with value", {"agent", "--config-dir=/etc/x"}, {"agent", "--config_dir=/etc/x"}},
      {"several dashes in the name", {"agent", "--a-b-c=1"}, {"agent", "--a_b_c=1"}},
      {"dashes in the value stay",
       {"agent", "--cgroup-root=/sys/fs/cgroup/my-node"},
       {"agent", "--cgroup_root=/sys/fs/cgroup/my-node"}},
      {"value containing '=' and dashes", {"agent", "--x-y=a-b=c-d"}, {"agent", "--x_y=a-b=c-d"}},
      {"boolean flag without value", {"agent", "--no-color"}, {"agent", "--no_color"}},
      {"underscored flag unchanged", {"agent", "--config_dir=x"}, {"agent", "--config_dir=x"}},
      {"separate value argument stays",
       {"agent", "--config-dir", "/tmp/my-dir"},
       {"agent", "--config_dir", "/tmp/my-dir"}},
      {"single-dash flag left alone", {"agent", "-config-dir=x"}, {"agent", "-config-dir=x"}},
      {"positional with dashes left alone", {"agent", "my-file.yaml"}, {"agent", "my-file.yaml"}},
      {"lone dash left alone", {"agent", "-"}, {"agent", "-"}},
      {"empty argument left alone", {"agent", ""}, {"agent", ""}},
      {"everything after -- is positional",
       {"agent", "--node-name=a", "--", "--keep-me=x-y"},
       {"agent", "--node_name=a", "--", "--keep-me=x-y"}},
      {"argv[0] is never rewritten", {"--my-prog", "--a-b"}, {"--my-prog", "--a_b"}},
  };
  for (const Case& c : cases) EXPECT_EQ(Normalize(c.in), c.want) << c.description;
}

TEST(NormalizeDashedFlagsTest, NoArgumentsIsANoOp) {
  EXPECT_EQ(Normalize({"agent"}), std::vector<std::string>{"agent"});
}

}  // namespace
}  // namespace shunt::lib
