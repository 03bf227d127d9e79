#include "tools/common/flag_set.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace shunt::cli {
namespace {

// "a", "a or b", "a, b or c".
std::string OneOf(const std::vector<std::string>& words) {
  if (words.size() <= 1) return absl::StrJoin(words, "");
  return absl::StrCat(absl::StrJoin(words.begin(), words.end() - 1, ", "), " or ", words.back());
}

// A next argument that is a flag, not a value: "-x", "--x", "--"; but not a
// negative number ("-1", "-.5") or a lone "-".
bool LooksLikeFlag(absl::string_view arg) {
  return arg.size() > 1 && arg[0] == '-' && !std::isdigit(static_cast<unsigned char>(arg[1])) &&
         arg[1] != '.';
}

absl::Status BadValue(absl::string_view spelling, absl::string_view value,
                      absl::string_view expected) {
  return absl::InvalidArgumentError(absl::StrCat(spelling, " ", value, ": expected ", expected));
}

}  // namespace

FlagSet::Flag& FlagSet::Flag::Short(char c) {
  short_name_ = c;
  return *this;
}

FlagSet::Flag& FlagSet::Flag::ValueMayStartWithDash() {
  dash_value_ = true;
  return *this;
}

FlagSet::Flag& FlagSet::Add(absl::string_view name, bool takes_value) {
  if (name.empty() || name == "help" || FindLong(name) != nullptr) {
    std::fprintf(stderr, "FlagSet: flag '--%s' is reserved or registered twice\n",
                 std::string(name).c_str());
    std::abort();
  }
  Flag& f = flags_.emplace_back();
  f.name_ = std::string(name);
  f.takes_value_ = takes_value;
  return f;
}

FlagSet::Flag& FlagSet::String(absl::string_view name, std::string* out) {
  Flag& f = Add(name, true);
  f.set_ = [out](absl::string_view, absl::string_view v) {
    *out = std::string(v);
    return absl::OkStatus();
  };
  return f;
}

FlagSet::Flag& FlagSet::Int(absl::string_view name, int* out, int lo, int hi) {
  Flag& f = Add(name, true);
  f.set_ = [out, lo, hi](absl::string_view spelling, absl::string_view v) {
    int n = 0;
    if (!absl::SimpleAtoi(v, &n) || n < lo || n > hi)
      return BadValue(spelling, v,
                      hi == INT_MAX ? absl::StrCat("an integer >= ", lo)
                                    : absl::StrCat("an integer in [", lo, ", ", hi, "]"));
    *out = n;
    return absl::OkStatus();
  };
  return f;
}

FlagSet::Flag& FlagSet::Double(absl::string_view name, double* out, double lo, double hi) {
  Flag& f = Add(name, true);
  f.set_ = [out, lo, hi](absl::string_view spelling, absl::string_view v) {
    double d = 0;
    if (!absl::SimpleAtod(v, &d) || !(d >= lo && d <= hi))  // NaN fails too
      return BadValue(spelling, v, absl::StrCat("a number in [", lo, ", ", hi, "]"));
    *out = d;
    return absl::OkStatus();
  };
  return f;
}

FlagSet::Flag& FlagSet::Choice(absl::string_view name, std::string* out,
                               std::vector<std::string> choices) {
  Flag& f = Add(name, true);
  f.set_ = [out, choices = std::move(choices)](absl::string_view spelling, absl::string_view v) {
    for (const std::string& c : choices) {
      if (v == c) {
        *out = c;
        return absl::OkStatus();
      }
    }
    return BadValue(spelling, v, OneOf(choices));
  };
  return f;
}

FlagSet::Flag& FlagSet::Bool(absl::string_view name, bool* out) {
  Flag& f = Add(name, false);
  f.set_ = [out](absl::string_view spelling, absl::string_view v) {
    if (v == "true" || v == "1") {
      *out = true;
    } else if (v == "false" || v == "0") {
      *out = false;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(spelling, "=", v, ": expected true or false (or no value)"));
    }
    return absl::OkStatus();
  };
  return f;
}

FlagSet::Flag& FlagSet::Repeated(absl::string_view name, std::vector<std::string>* out) {
  Flag& f = Add(name, true);
  f.set_ = [out](absl::string_view, absl::string_view v) {
    out->emplace_back(v);
    return absl::OkStatus();
  };
  return f;
}

const FlagSet::Flag* FlagSet::FindLong(absl::string_view name) const {
  for (const Flag& f : flags_)
    if (f.name_ == name) return &f;
  return nullptr;
}

const FlagSet::Flag* FlagSet::FindShort(char c) const {
  for (const Flag& f : flags_)
    if (f.short_name_ != 0 && f.short_name_ == c) return &f;
  return nullptr;
}

std::string FlagSet::Unknown(absl::string_view spelling) const {
  // What the old prefix matching would have guessed, now only suggested.
  absl::string_view typed = spelling;
  typed.remove_prefix(std::min(typed.find_first_not_of('-'), typed.size()));
  std::vector<std::string> near;
  for (const Flag& f : flags_)
    if (!typed.empty() && (absl::StartsWith(f.name_, typed) || absl::StartsWith(typed, f.name_)))
      near.push_back("--" + f.name_);
  if (near.empty() || near.size() > 3) return absl::StrCat("unknown flag ", spelling);
  return absl::StrCat("unknown flag ", spelling, " (did you mean ", OneOf(near), "?)");
}

absl::StatusOr<FlagSet::Result> FlagSet::Parse(const std::vector<std::string>& args) const {
  Result r;
  for (size_t i = 0; i < args.size(); ++i) {
    const absl::string_view arg = args[i];
    if (arg == "--") {  // the rest are positional
      r.args.insert(r.args.end(), args.begin() + static_cast<ptrdiff_t>(i) + 1, args.end());
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {  // "x", "-", ""
      r.args.emplace_back(arg);
      continue;
    }
    const size_t eq = arg.find('=');
    const absl::string_view spelling = arg.substr(0, eq);
    const bool has_value = eq != absl::string_view::npos;
    const absl::string_view inline_value = has_value ? arg.substr(eq + 1) : absl::string_view();
    const bool is_long = arg[1] == '-';
    const absl::string_view name = spelling.substr(is_long ? 2 : 1);
    if ((is_long && name == "help") || (!is_long && name == "h")) {
      r.help = true;
      return r;
    }
    const Flag* f = is_long ? FindLong(name) : name.size() == 1 ? FindShort(name[0]) : nullptr;
    if (f == nullptr) return absl::InvalidArgumentError(Unknown(spelling));
    if (!f->takes_value_) {
      if (absl::Status s = f->set_(spelling, has_value ? inline_value : "true"); !s.ok()) return s;
      r.set.push_back(f->name_);
      continue;
    }
    absl::string_view value = inline_value;
    if (!has_value) {
      if (i + 1 >= args.size() || (!f->dash_value_ && LooksLikeFlag(args[i + 1])))
        return absl::InvalidArgumentError(absl::StrCat(spelling, " needs a value"));
      value = args[++i];
    }
    if (absl::Status s = f->set_(spelling, value); !s.ok()) return s;
    r.set.push_back(f->name_);
  }
  return r;
}

absl::StatusOr<FlagSet::Result> FlagSet::Parse(int argc, const char* const* argv) const {
  return Parse(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}

int UsageError(absl::string_view program, const absl::Status& status) {
  std::fprintf(stderr, "%s: %s (see %s --help)\n", std::string(program).c_str(),
               std::string(status.message()).c_str(), std::string(program).c_str());
  return 2;
}

}  // namespace shunt::cli
