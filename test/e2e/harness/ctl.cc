#include "ctl.h"

#include <sstream>

#include "absl/strings/str_cat.h"

namespace shunt::e2e {

absl::StatusOr<std::vector<nlohmann::json>> ShuntctlDrops(const TestNode& node) {
  auto text = Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", node.api_socket(), " drops -o json"));
  if (!text.ok()) return text.status();
  std::vector<nlohmann::json> out;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return absl::InternalError("shuntctl drops: not JSON: " + line);
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace shunt::e2e
