#include "flow_commands.h"

#include <chrono>
#include <iostream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "agent/telemetry/histogram.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {
namespace {

struct Filter {
  std::string from, to, verdict, path, state;
  int port = -1;
};

absl::StatusOr<Filter> ParseFilter(const Options& o) {
  Filter f;
  auto flag = [&](const char* name) {
    auto it = o.flags.find(name);
    return it == o.flags.end() ? std::string() : it->second;
  };
  f.from = flag("from");
  f.to = flag("to");
  f.verdict = flag("verdict");
  f.path = flag("path");
  f.state = flag("state");
  if (std::string p = flag("port"); !p.empty()) {
    if (!absl::SimpleAtoi(p, &f.port) || f.port < 1 || f.port > 65535)
      return absl::InvalidArgumentError(absl::StrCat("--port ", p, ": expected 1..65535"));
  }
  if (!f.verdict.empty() && f.verdict != "allowed" && f.verdict != "l7" && f.verdict != "audit" &&
      f.verdict != "denied" && f.verdict != "unmeshed")
    return absl::InvalidArgumentError(
        absl::StrCat("--verdict ", f.verdict, ": expected allowed, l7, audit, denied or unmeshed"));
  if (!f.path.empty() && f.path != "short-circuit" && f.path != "tcp" && f.path != "mtls" &&
      f.path != "l7")
    return absl::InvalidArgumentError(
        absl::StrCat("--path ", f.path, ": expected short-circuit, tcp, mtls or l7"));
  if (!f.state.empty() && f.state != "live" && f.state != "closed")
    return absl::InvalidArgumentError(
        absl::StrCat("--state ", f.state, ": expected live or closed"));
  if (o.follow && f.state == "live")
    return absl::InvalidArgumentError(
        "--follow streams flows as they finish; it cannot show --state live");
  return f;
}

// An end matches its IP, its namespace, NS/POD, NS/KIND/WORKLOAD or KIND/WORKLOAD.
bool EndMatches(const Json& end, const std::string& want) {
  if (want.empty()) return true;
  const std::string ns = end.value("namespace", ""), workload = end.value("workload", "");
  return want == end.value("ip", "") || (!ns.empty() && want == ns) ||
         (!ns.empty() && want == ns + "/" + end.value("pod", "")) ||
         (!ns.empty() && want == ns + "/" + workload) || want == workload;
}

bool Matches(const Filter& f, const Json& flow, bool live) {
  if (!f.state.empty() && (f.state == "live") != live) return false;
  if (!EndMatches(flow["client"], f.from) || !EndMatches(flow["server"], f.to)) return false;
  if (f.port >= 0 && flow["server"]["port"].get<int>() != f.port) return false;
  if (!f.verdict.empty() && flow["verdict"] != f.verdict) return false;
  if (!f.path.empty() && flow["path"] != f.path) return false;
  return true;
}

std::string EndText(const Json& e) {
  std::string who =
      e.contains("pod") ? absl::StrCat(Str(e["namespace"]), "/", Str(e["pod"])) : Str(e["ip"]);
  return absl::StrCat(who, ":", Str(e["port"]));
}

std::string Micros(const Json& flow, const char* field) {
  return flow.contains(field) ? telemetry::FormatDuration(flow[field].get<double>() * 1e3) : "-";
}

std::vector<std::string> Row(const Json& f) {
  std::string resp = "-";
  if (f.contains("response_latency_us"))
    resp =
        absl::StrCat(telemetry::FormatDuration(f["response_latency_us"]["p50"].get<double>() * 1e3),
                     " (", Str(f["requests"]), ")");
  std::string dur = f.contains("duration_us")
                        ? telemetry::FormatDuration(f["duration_us"].get<double>() * 1e3)
                        : "-";
  // "mtls spiffe://td/ns/demo/sa/server (reader-never-read)": the peer as
  // its certificate proved it, and why a local leg stayed on TCP.
  std::string path = Str(f["path"]);
  if (f.contains("peer_identity")) absl::StrAppend(&path, " ", Str(f["peer_identity"]));
  if (f.contains("tcp_reason")) absl::StrAppend(&path, " (", Str(f["tcp_reason"]), ")");
  return {Str(f["end"]),
          EndText(f["client"]),
          EndText(f["server"]),
          path,
          Str(f["verdict"]),
          absl::StrCat(Str(f["bytes_to_server"]), "/", Str(f["bytes_to_client"])),
          Micros(f, "connect_us"),
          resp,
          dur};
}

const std::vector<std::string> kHeader = {"STATE",   "CLIENT",           "SERVER",
                                          "PATH",    "VERDICT",          "BYTES >/<",
                                          "CONNECT", "RESPONSE P50 (N)", "DURATION"};

}  // namespace

absl::Status CmdFlows(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(Filter filter, ParseFilter(o));
  uint64_t after = 0;
  bool header = false;
  Table t(kHeader);
  for (bool first = true;; first = false) {
    SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "GET", absl::StrCat("/v1/flows?after=", after)));
    if (first && !r.value("telemetry", true))
      std::cerr
          << "note: the agent runs with --telemetry=false: the kernel keeps no flow records\n";
    after = r["next"].get<uint64_t>();
    std::vector<std::pair<const Json*, bool>> shown;
    for (const auto& f : r["closed"])
      if (Matches(filter, f, false)) shown.emplace_back(&f, false);
    if (!o.follow)
      for (const auto& f : r["live"])
        if (Matches(filter, f, true)) shown.emplace_back(&f, true);
    for (const auto& [f, live] : shown) {
      if (o.json) {
        std::cout << f->dump() << "\n";
      } else if (o.follow) {
        // Streaming: fixed columns, since a table cannot be aligned in advance.
        constexpr char kLine[] = "%-7s  %-26s  %-26s  %-13s  %-8s  %-17s  %-8s  %-16s  %s\n";
        if (!header)
          std::cout << absl::StrFormat(kLine, kHeader[0], kHeader[1], kHeader[2], kHeader[3],
                                       kHeader[4], kHeader[5], kHeader[6], kHeader[7], kHeader[8]);
        header = true;
        auto row = Row(*f);
        std::cout << absl::StrFormat(kLine, row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                                     row[7], row[8]);
      } else {
        t.Add(Row(*f));
      }
    }
    if (!o.follow) break;
    std::cout.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!o.json) {
    if (t.empty())
      std::cout << "No flows match.\n";
    else
      std::cout << t.Render();
  }
  return absl::OkStatus();
}

}  // namespace shunt::ctl
