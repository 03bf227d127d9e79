#include "ctl.h"

#include <chrono>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace shunt::e2e {

namespace {

absl::StatusOr<std::vector<nlohmann::json>> JsonLines(const std::string& cmd) {
  auto text = Sh(absl::StrCat(SHUNTCTL_BIN, " --api-socket ", cmd));
  if (!text.ok()) return text.status();
  std::vector<nlohmann::json> out;
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("note: ", 0) == 0) continue;  // advice on stderr, not data
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return absl::InternalError("shuntctl: not JSON: " + line);
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<nlohmann::json>> ShuntctlDrops(const TestNode& node) {
  return JsonLines(absl::StrCat(node.api_socket(), " drops -o json"));
}

absl::StatusOr<std::vector<nlohmann::json>> ShuntctlFlows(const TestNode& node, const std::string& args) {
  return JsonLines(absl::StrCat(node.api_socket(), " flows -o json ", args));
}

absl::StatusOr<std::vector<nlohmann::json>> WaitFlows(const TestNode& node, const std::string& args, size_t n) {
  for (int i = 0;; ++i) {
    auto flows = ShuntctlFlows(node, args);
    if (!flows.ok() || flows->size() >= n || i >= 30) return flows;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace shunt::e2e
