// Where an object came from and what it is called, for error messages.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace shunt::model {

struct ObjectRef {
  std::string file;  // path as given to the source
  int line = 0;      // 1-based line of the document start, 0 if unknown
  std::string kind;
  std::string namespace_;
  std::string name;

  // "pods.yaml:12 Pod demo/client"
  std::string ToString() const {
    std::string where = line > 0 ? absl::StrCat(file, ":", line) : file;
    // A problem with the file itself, or an object that names nothing.
    if (kind.empty() && name.empty()) return where.empty() ? "object" : where;
    std::string what = kind.empty() ? "object" : kind;
    const std::string sep = where.empty() ? "" : " ";
    if (name.empty()) return absl::StrCat(where, sep, what);
    return absl::StrCat(where, sep, what, " ", namespace_.empty() ? "" : namespace_ + "/", name);
  }
};

// One rejected object or file, as shown in the agent log and `shuntctl status`.
struct Problem {
  ObjectRef ref;
  std::string reason;
  std::string ToString() const { return absl::StrCat(ref.ToString(), ": ", reason); }
};

}  // namespace shunt::model
