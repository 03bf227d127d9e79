// The shuntctl command line: its usage text, and the parsed form every
// command reads.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shunt::ctl {

struct Options {
  std::string bpffs = "/sys/fs/bpf/shunt";
  std::string api_socket = "/run/shunt/agent.sock";
  bool json = false;
  bool follow = false;
  std::map<std::string, std::string> flags;  // command flags: from, to, port, proto
  std::vector<std::string> args;
  bool help = false;  // -h, --help or help: print kUsage
};

// `shuntctl --help`.
extern const char kUsage[];

// argv (argv[0] skipped) -> Options. InvalidArgumentError naming the flag or
// saying that no command was given.
absl::StatusOr<Options> ParseArgs(int argc, const char* const* argv);

}  // namespace shunt::ctl
