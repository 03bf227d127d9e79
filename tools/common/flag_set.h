// FlagSet: the one command-line parser of shuntctl and the benchmarks.
//
// Flags match exactly: `--bpffsX` and `--bpf` are unknown flags, never taken
// for `--bpffs`. A flag with a value takes it as `--name=value` or
// `--name value`; a bool flag takes no value (`--follow`) or an explicit one
// (`--follow=false`). `-h`/`--help` are built in, `--` ends the flags, and
// everything else is a positional argument, wherever it stands.
//
// Why not Abseil flags (which the agent uses): its registry is global, so a
// command cannot have flags of its own and a unit test cannot build a parser;
// a bad flag makes the 2022 release print its own message and exit(1), where
// our tools exit 2 with a hint to --help; and it has no one-letter flags
// (`-o json`, `-f`).
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shunt::cli {

class FlagSet {
 public:
  // One registered flag; its setters return it so that options chain:
  //   flags.Choice("output", &fmt, {"json", "table"}).Short('o');
  class Flag {
   public:
    // A one-letter spelling, `-o`, besides `--output`.
    Flag& Short(char c);
    // The value of `--name value` may start with '-' (--agent-flag
    // --telemetry=false). Otherwise a next argument that looks like a flag
    // means the value is missing.
    Flag& ValueMayStartWithDash();

   private:
    friend class FlagSet;
    std::string name_;
    char short_name_ = 0;
    bool takes_value_ = true;
    bool dash_value_ = false;
    // Stores the value; `spelling` is the flag as typed, for messages.
    std::function<absl::Status(absl::string_view spelling, absl::string_view value)> set_;
  };

  // Registration. `name` is the long name without dashes ("api-socket");
  // `out` holds the default and must outlive Parse. A name registered
  // twice, or "help", is a programming error and aborts.
  Flag& String(absl::string_view name, std::string* out);
  // A whole number in [lo, hi].
  Flag& Int(absl::string_view name, int* out, int lo, int hi);
  // A number in [lo, hi].
  Flag& Double(absl::string_view name, double* out, double lo, double hi);
  // One of `choices`.
  Flag& Choice(absl::string_view name, std::string* out, std::vector<std::string> choices);
  // true when given bare; `--name=true|false|1|0` also work.
  Flag& Bool(absl::string_view name, bool* out);
  // Repeatable: each occurrence appends its value.
  Flag& Repeated(absl::string_view name, std::vector<std::string>* out);

  struct Result {
    bool help = false;              // -h or --help (parsing stopped there)
    std::vector<std::string> args;  // positional arguments, in order
    std::vector<std::string> set;   // long names of the flags given, in order
  };

  // Parses `args` (without the program name), writing each flag's value to
  // its destination as it comes. InvalidArgumentError naming the flag as
  // typed for an unknown flag (with "did you mean" when a known one is a
  // prefix of it or it of one), a missing value, or a value that is not a
  // number, out of range or not one of the choices.
  absl::StatusOr<Result> Parse(const std::vector<std::string>& args) const;
  // The same over main()'s argv (argv[0] skipped).
  absl::StatusOr<Result> Parse(int argc, const char* const* argv) const;

 private:
  Flag& Add(absl::string_view name, bool takes_value);
  const Flag* FindLong(absl::string_view name) const;
  const Flag* FindShort(char c) const;
  std::string Unknown(absl::string_view spelling) const;

  std::deque<Flag> flags_;  // a deque: registration hands out references
};

// Prints "PROGRAM: MESSAGE (see PROGRAM --help)" to stderr and returns 2,
// the exit code of a command-line mistake.
int UsageError(absl::string_view program, const absl::Status& status);

}  // namespace shunt::cli
