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
  // The command's own flags that were given, by name without dashes (from,
  // to, port, proto, verdict, path, state, window, interval); --port is
  // already checked to be 1..65535 and --verdict, --path, --state to be one
  // of their choices.
  std::map<std::string, std::string> flags;
  std::vector<std::string> args;  // the command, its verb and arguments
  bool help = false;              // -h, --help or help: print kUsage
};

// `shuntctl --help`.
extern const char kUsage[];

// argv (argv[0] skipped) -> Options. Flags match exactly (cli::FlagSet) and
// may stand before or after the command. InvalidArgumentError naming the
// flag when it is unknown (a prefix of a flag included), lacks its value,
// has a bad one or is not one the command reads; or saying that no command
// was given. An unknown command is left to the caller.
absl::StatusOr<Options> ParseArgs(int argc, const char* const* argv);

}  // namespace shunt::ctl
