#include "errno_status.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace shunt::lib {

absl::Status ErrnoStatus(int err, absl::string_view what) {
  const int e = err < 0 ? -err : err;
  return absl::ErrnoToStatus(e, absl::StrCat(what, ": ", std::strerror(e)));
}

}  // namespace shunt::lib
