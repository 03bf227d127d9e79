#include "stat_commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/http/router.h"
#include "agent/lib/status_macros.h"
#include "agent/telemetry/histogram.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {
namespace {

// "30s", "1m", "30" -> seconds.
absl::StatusOr<int> Seconds(const Options& o, const char* flag, int def, int max) {
  auto it = o.flags.find(flag);
  if (it == o.flags.end()) return def;
  std::string v = it->second;
  int mult = 1;
  if (!v.empty() && v.back() == 's')
    v.pop_back();
  else if (!v.empty() && v.back() == 'm')
    v.pop_back(), mult = 60;
  int n = 0;
  // In 64 bits: --window 99999999m must not overflow int.
  const int64_t secs = absl::SimpleAtoi(v, &n) ? int64_t{n} * mult : 0;
  if (secs < 1 || secs > max)
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, " ", it->second, ": expected a duration from 1s to ", max, "s"));
  return static_cast<int>(secs);
}

std::string Ms(const Json& row, const char* field) {
  return row.contains(field) ? telemetry::FormatDuration(row[field].get<double>() * 1e6) : "-";
}

// One literal format per branch: clang checks absl::StrFormat's format at
// compile time and refuses one chosen at run time.
std::string Rate(double v) {
  if (v >= 100) return absl::StrFormat("%.0f", v);
  if (v >= 10) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.2f", v);
}

std::string Success(const Json& row) {
  if (row["success_rate"].is_null()) return "-";
  return absl::StrFormat("%.2f%%", row["success_rate"].get<double>() * 100);
}

std::string Who(const Json& row, const char* ns, const char* name) {
  const std::string n = row.value(ns, "");
  return n.empty() ? row.value(name, "") : absl::StrCat(n, "/", row.value(name, ""));
}

absl::StatusOr<Json> Fetch(const Options& o, int window_s, const std::string& group) {
  SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "GET",
                                              absl::StrCat("/v1/stat?window=", window_s,
                                                           "&group=", http::PercentEncode(group))));
  if (!r.value("telemetry", true))
    std::cerr << "note: the agent runs with --telemetry=false: the kernel keeps no flow records\n";
  return r;
}

// The share of the row's finished flows the mTLS tunnel carried ("-": none).
std::string MtlsShare(const Json& row) {
  const uint64_t mtls = row.value("mtls_flows", uint64_t{0});
  const uint64_t flows = row.value("flows", uint64_t{0});
  if (mtls == 0 || flows == 0) return "-";
  return absl::StrFormat("%.0f%%", 100.0 * static_cast<double>(mtls) / static_cast<double>(flows));
}

std::string EdgeTable(const Json& r, size_t limit) {
  std::vector<Json> rows(r["rows"].begin(), r["rows"].end());
  // Busiest first: requests, then flows.
  std::stable_sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) {
    return std::make_pair(a["requests_per_s"].get<double>(), a["flows_per_s"].get<double>()) >
           std::make_pair(b["requests_per_s"].get<double>(), b["flows_per_s"].get<double>());
  });
  Table t({"SOURCE", "DESTINATION", "REQ/S", "FLOWS/S", "SUCCESS", "P50", "P99", "MTLS"});
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const Json& row = rows[i];
    t.Add({Who(row, "src_namespace", "src_name"), Who(row, "namespace", "name"),
           Rate(row["requests_per_s"].get<double>()), Rate(row["flows_per_s"].get<double>()),
           Success(row), Ms(row, "p50_ms"), Ms(row, "p99_ms"), MtlsShare(row)});
  }
  return t.empty() ? std::string("No traffic in the window.\n") : t.Render();
}

// Requests through the node proxy's L7 layer per destination and route,
// busiest first.
std::string RouteTable(const Json& r, size_t limit) {
  std::vector<Json> rows(r["rows"].begin(), r["rows"].end());
  std::stable_sort(rows.begin(), rows.end(), [](const Json& a, const Json& b) {
    return a["requests_per_s"].get<double>() > b["requests_per_s"].get<double>();
  });
  Table t({"NAMESPACE", "WORKLOAD", "ROUTE", "REQ/S", "SUCCESS", "P50", "P90", "P99", "DENIED",
           "RETRIES"});
  for (size_t i = 0; i < rows.size() && i < limit; ++i) {
    const Json& row = rows[i];
    const std::string route = row.value("route", "");
    t.Add({row.value("namespace", "").empty() ? "-" : row.value("namespace", ""),
           row.value("name", ""), route.empty() ? "-" : route,
           Rate(row["requests_per_s"].get<double>()), Success(row), Ms(row, "p50_ms"),
           Ms(row, "p90_ms"), Ms(row, "p99_ms"), absl::StrCat(row.value("denied", uint64_t{0})),
           absl::StrCat(row.value("retries", uint64_t{0}))});
  }
  return t.empty() ? std::string("No HTTP requests in the window.\n") : t.Render();
}

}  // namespace

absl::Status CmdStat(const Options& o) {
  const std::string group = o.args.size() >= 2 ? o.args[1] : "workload";
  if (o.args.size() > 2)
    return absl::InvalidArgumentError(
        "usage: shuntctl stat [workload|pod|edge|route] [--window 30s]");
  SHUNT_ASSIGN_OR_RETURN(int window_s, Seconds(o, "window", 30, 60));
  SHUNT_ASSIGN_OR_RETURN(Json r, Fetch(o, window_s, group));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  const double covered_s = r["covered_s"].get<double>();
  if (group == "route")
    std::cout << absl::StrFormat(
        "Last %ds (%.0fs covered), HTTP requests through the node proxy's L7 layer:\n", window_s,
        covered_s);
  else
    std::cout << absl::StrFormat(
        "Last %ds (%.0fs covered), flows finished and requests answered:\n", window_s, covered_s);
  if (group == "edge") {
    std::cout << EdgeTable(r, SIZE_MAX);
    return absl::OkStatus();
  }
  if (group == "route") {
    std::cout << RouteTable(r, SIZE_MAX);
    return absl::OkStatus();
  }
  Table t({"NAMESPACE", group == "pod" ? "POD" : "WORKLOAD", "SUCCESS", "FLOWS/S", "REQ/S", "P50",
           "P90", "P99", "FAILED", "MTLS"});
  for (const auto& row : r["rows"])
    t.Add({row["namespace"].get<std::string>().empty() ? "-" : row["namespace"].get<std::string>(),
           row["name"].get<std::string>(), Success(row), Rate(row["flows_per_s"].get<double>()),
           Rate(row["requests_per_s"].get<double>()), Ms(row, "p50_ms"), Ms(row, "p90_ms"),
           Ms(row, "p99_ms"), absl::StrCat(row["failures"].get<uint64_t>()), MtlsShare(row)});
  std::cout << (t.empty() ? std::string("No traffic in the window.\n") : t.Render());
  return absl::OkStatus();
}

absl::Status CmdTop(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(int window_s, Seconds(o, "window", 30, 60));
  SHUNT_ASSIGN_OR_RETURN(int interval_s, Seconds(o, "interval", 2, 3600));
  const bool tty = isatty(STDOUT_FILENO) && !o.json;
  for (;;) {
    SHUNT_ASSIGN_OR_RETURN(Json r, Fetch(o, window_s, "edge"));
    // HTTP routes, when the node proxy's L7 layer carried requests.
    SHUNT_ASSIGN_OR_RETURN(
        Json routes,
        AgentRequest(o, "GET", absl::StrCat("/v1/stat?group=route&window=", window_s)));
    if (o.json) {
      r["routes"] = routes["rows"];
      std::cout << r.dump(2) << "\n";
      return absl::OkStatus();
    }
    std::string screen;
    if (tty) screen = "\x1b[H\x1b[2J";  // home, clear: redraw in place
    const time_t now = time(nullptr);
    char clock[16];
    strftime(clock, sizeof(clock), "%H:%M:%S", localtime(&now));
    absl::StrAppend(
        &screen, "shuntctl top  ", clock, "  busiest edges over the last ", window_s, "s",
        tty ? absl::StrCat(", every ", interval_s, "s (Ctrl-C to quit)") : std::string(), "\n\n");
    // On a terminal, as many rows as fit.
    size_t rows = SIZE_MAX;
    if (tty) {
      const char* lines = getenv("LINES");
      int n = 0;
      rows = lines && absl::SimpleAtoi(lines, &n) && n > 5 ? static_cast<size_t>(n - 5) : 20;
    }
    absl::StrAppend(&screen, EdgeTable(r, rows));
    if (!routes["rows"].empty()) {
      const size_t edges_shown = std::min(rows, r["rows"].size());
      const size_t left = rows == SIZE_MAX         ? SIZE_MAX
                          : rows > edges_shown + 3 ? rows - edges_shown - 3
                                                   : 1;
      absl::StrAppend(&screen, "\nbusiest HTTP routes:\n", RouteTable(routes, left));
    }
    std::cout << screen << std::flush;
    if (!tty) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::seconds(interval_s));
  }
}

}  // namespace shunt::ctl
