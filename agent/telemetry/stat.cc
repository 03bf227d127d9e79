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

void StatPercentiles(const LatencyHistogram& h, nlohmann::json& j) {
  if (h.empty()) return;
  j["p50_ms"] = h.Quantile(0.5) / 1e6;
  j["p90_ms"] = h.Quantile(0.9) / 1e6;
  j["p99_ms"] = h.Quantile(0.99) / 1e6;
}

// group=route: requests through the node proxy's L7 layer per destination
// workload and route (and port: one route may serve two).
nlohmann::json StatRouteRows(const std::vector<std::pair<RouteEdgeKey, RequestTotals>>& window,
                             int window_s, double covered_s) {
  static constexpr const char* kClass[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  std::map<std::tuple<std::string, std::string, uint16_t, std::string>, RequestTotals> rows;
  for (const auto& [k, t] : window)
    rows[{k.edge.dst_namespace, k.edge.dst_workload, k.port, k.route}].Merge(t);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, t] : rows) {
    const auto& [ns, name, port, route] = key;
    nlohmann::json classes = nlohmann::json::object();
    for (size_t i = 0; i < t.by_class.size(); ++i)
      if (t.by_class[i]) classes[kClass[i]] = t.by_class[i];
    const uint64_t n = t.requests();
    nlohmann::json j = {
        {"namespace", ns},
        {"name", name},
        {"port", port},
        {"route", route},
        {"requests", n},
        {"requests_per_s", static_cast<double>(n) / covered_s},
        {"successes", t.successes()},
        {"failures", t.failures()},
        {"denied", t.denied},
        {"retries", t.retries},
        {"classes", classes},
        {"success_rate",
         n ? nlohmann::json(static_cast<double>(t.successes()) / n) : nlohmann::json()},
    };
    StatPercentiles(t.latency, j);
    out.push_back(std::move(j));
  }
  return nlohmann::json{
      {"group", "route"}, {"window_s", window_s}, {"covered_s", covered_s}, {"rows", out}};
}

}  // namespace

absl::StatusOr<nlohmann::json> StatJson(const FlowAggregator& flows, int64_t now_wall_ns,
                                        int window_s, const std::string& group,
                                        const RequestWindows* requests) {
  if (group != "workload" && group != "pod" && group != "edge" && group != "route")
    return absl::InvalidArgumentError(
        absl::StrCat("'", group, "': expected workload, pod, edge or route"));
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

  const auto request_window = requests ? requests->Window(now_wall_ns, window_s)
                                       : std::vector<std::pair<RouteEdgeKey, RequestTotals>>();
  if (group == "route") return StatRouteRows(request_window, window_s, covered_s);
  std::map<Row, WindowTotals> rows;
  std::map<Row, std::pair<bool, bool>> units;  // counted requests, counted flows
  for (const auto& [k, t] : MergeRequests(flows.Window(now_wall_ns, window_s), request_window)) {
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
    into.flows += t.flows;
    into.mtls += t.mtls;
    auto& [by_request, by_flow] = units[r];
    (t.per_request ? by_request : by_flow) = true;
    into.response.Merge(t.response);
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [r, t] : rows) {
    // The success rate's unit: the request where the L7 layer saw the
    // row's traffic, the flow where only the kernel did; both: "mixed".
    const auto [by_request, by_flow] = units[r];
    const char* unit = by_request && by_flow ? "mixed" : by_request ? "request" : "flow";
    const uint64_t judged = t.successes + t.failures;
    nlohmann::json j = {
        {"namespace", r.dst_namespace},
        {"name", r.dst_name},
        {"successes", t.successes},
        {"failures", t.failures},
        {"success_unit", unit},
        {"flows", t.flows},
        {"mtls_flows", t.mtls},
        {"flows_per_s", static_cast<double>(t.flows) / covered_s},
        {"requests", t.response.count()},
        {"requests_per_s", static_cast<double>(t.response.count()) / covered_s},
        {"success_rate",
         judged ? nlohmann::json(static_cast<double>(t.successes) / judged) : nlohmann::json()},
    };
    StatPercentiles(t.response, j);
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
