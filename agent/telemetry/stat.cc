#include "stat.h"

#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace shunt::telemetry {
namespace {

struct Row {
  std::string src_namespace, src_name, dst_namespace, dst_name;
  auto operator<=>(const Row&) const = default;
};

}  // namespace

absl::StatusOr<nlohmann::json> StatJson(const FlowAggregator& flows, int64_t now_wall_ns,
                                        int window_s, const std::string& group) {
  if (group != "workload" && group != "pod" && group != "edge")
    return absl::InvalidArgumentError(
        absl::StrCat("'", group, "': expected workload, pod or edge"));
  if (window_s < 1 || window_s > FlowAggregator::kMaxWindowSeconds)
    return absl::InvalidArgumentError(absl::StrCat("window ", window_s, "s: expected 1s to ",
                                                   FlowAggregator::kMaxWindowSeconds, "s"));
  // The slices a window covers start at a multiple of the slice length: the
  // rates divide by the time actually covered, from that start to now.
  const int64_t now_s = now_wall_ns / 1000000000;
  const int64_t slice = FlowAggregator::kSliceSeconds;
  const int64_t first = now_s / slice - (window_s + slice - 1) / slice + 1;
  const double covered_s =
      std::max(1.0, static_cast<double>(now_wall_ns) / 1e9 - static_cast<double>(first * slice));

  std::map<Row, WindowTotals> rows;
  for (const auto& [k, t] : flows.Window(now_wall_ns, window_s)) {
    Row r;
    if (group == "edge") {
      r = {k.src_namespace, k.src_workload, k.dst_namespace, k.dst_workload};
    } else if (group == "workload") {
      r = {"", "", k.dst_namespace, k.dst_workload};
    } else {
      r = {"", "", k.dst_namespace, k.dst_pod.empty() ? k.dst_workload : k.dst_pod};
    }
    WindowTotals& into = rows[r];
    into.successes += t.successes;
    into.failures += t.failures;
    into.mtls += t.mtls;
    into.response.Merge(t.response);
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [r, t] : rows) {
    const uint64_t flows_n = t.successes + t.failures;
    nlohmann::json j = {
        {"namespace", r.dst_namespace},
        {"name", r.dst_name},
        {"successes", t.successes},
        {"failures", t.failures},
        {"mtls_flows", t.mtls},
        {"flows_per_s", static_cast<double>(flows_n) / covered_s},
        {"requests", t.response.count()},
        {"requests_per_s", static_cast<double>(t.response.count()) / covered_s},
        {"success_rate",
         flows_n ? nlohmann::json(static_cast<double>(t.successes) / flows_n) : nlohmann::json()},
    };
    if (!t.response.empty()) {
      j["p50_ms"] = t.response.Quantile(0.5) / 1e6;
      j["p90_ms"] = t.response.Quantile(0.9) / 1e6;
      j["p99_ms"] = t.response.Quantile(0.99) / 1e6;
    }
    if (group == "edge") {
      j["src_namespace"] = r.src_namespace;
      j["src_name"] = r.src_name;
    }
    out.push_back(std::move(j));
  }
  return nlohmann::json{
      {"group", group}, {"window_s", window_s}, {"covered_s", covered_s}, {"rows", out}};
}

}  // namespace shunt::telemetry
