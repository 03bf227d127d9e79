#include "service_commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/http/router.h"
#include "agent/lib/status_macros.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {

absl::Status CmdServices(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "GET", "/v1/services"));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  Table t({"SERVICE", "ADDRESS", "PROTO", "BALANCER", "SPLIT", "BACKEND", "POD", "WEIGHT",
           "LIVE SHARE", "FLOWS", "EWMA", "OPEN", "SCORE"});
  for (const auto& s : r["services"]) {
    const std::string svc = s["service"].get<std::string>();
    const std::string split =
        s["split"].get<std::string>().empty() ? "-" : s["split"].get<std::string>();
    // Meshed pods' HTTP to it is balanced per request by the node proxy.
    const std::string balancer =
        s["balancer"].get<std::string>() + (s.value("l7", false) ? " (+ per request)" : "");
    if (s["backends"].empty()) {
      t.Add({svc, s["address"], s["proto"], balancer, split, "(no ready backend: refused)", "-",
             "-", "-", "-", "-", "-", "-"});
      continue;
    }
    bool first = true;
    for (const auto& b : s["backends"]) {
      t.Add({first ? svc : "", first ? s["address"].get<std::string>() : "",
             first ? s["proto"].get<std::string>() : "", first ? balancer : "", first ? split : "",
             b["address"].get<std::string>(), b.value("pod", "-"),
             absl::StrFormat("%.1f%%", b["weight_percent"].get<double>()),
             absl::StrFormat("%.1f%%", b["live_share_percent"].get<double>()),
             absl::StrCat(b["flows"].get<uint64_t>()),
             b.contains("ewma_ms") ? absl::StrFormat("%.2fms", b["ewma_ms"].get<double>()) : "-",
             b.contains("open") ? absl::StrCat(b["open"].get<uint32_t>()) : "-",
             b.contains("score") ? absl::StrCat(b["score"].get<uint32_t>()) : "-"});
      first = false;
    }
  }
  std::cout << (t.empty() ? std::string("No services.\n") : t.Render());
  for (const auto& p : r["problems"]) std::cout << "problem: " << p.dump() << "\n";
  return absl::OkStatus();
}

namespace {

std::string Backend(const Json& b) {
  return b.contains("pod")
             ? absl::StrCat(b["address"].get<std::string>(), " (", b["pod"].get<std::string>(), ")")
             : b["address"].get<std::string>();
}

std::string ChoicesTable(const Json& choices) {
  Table c({"AGO", "CANDIDATE A", "SCORE A", "CANDIDATE B", "SCORE B", "PICKED", "WHY"});
  for (const auto& x : choices) {
    const auto& cand = x["candidates"];
    const bool two = cand.size() == 2;
    c.Add({absl::StrFormat("%.0fms", x["ago_ms"].get<double>()), Backend(cand[0]),
           two ? absl::StrCat(cand[0]["score"].get<uint32_t>()) : "-", two ? Backend(cand[1]) : "-",
           two ? absl::StrCat(cand[1]["score"].get<uint32_t>()) : "-", Backend(x["picked"]),
           x["why"].get<std::string>()});
  }
  return c.Render();
}

// The node proxy's choices for a service it balances per request: each of
// its threads balances on its own.
void PrintPerRequest(const Json& s) {
  std::cout << "  per request, in the node proxy (HTTP from meshed pods): a leaf service by "
               "weight, then two distinct\n"
               "  endpoints, the second only if over 20% lower; score = peak-EWMA latency x "
               "(requests in flight + 1);\n"
               "  ejected endpoints are left out\n";
  const auto& threads = s.value("per_request", Json::array());
  if (threads.empty()) {
    std::cout << "  no request balanced yet (or the proxy's L7 layer is off)\n\n";
    return;
  }
  for (const auto& t : threads) {
    for (const auto& l : t["leaves"]) {
      std::cout << "  proxy thread " << t["thread"].get<int>() << ", leaf "
                << l["leaf"].get<std::string>() << ":\n";
      Table e({"ENDPOINT", "STATE", "EJECTIONS", "IN FLIGHT", "SCORE"});
      for (const auto& x : l["endpoints"]) {
        std::string state = x["state"].get<std::string>();
        if (x.contains("ejected_for_ms"))
          absl::StrAppend(&state, " (", x["ejected_for_ms"].get<int64_t>(), "ms more)");
        e.Add({x["address"].get<std::string>(), state, absl::StrCat(x["ejections"].get<int>()),
               absl::StrCat(x["outstanding"].get<uint32_t>()),
               absl::StrCat(x["score"].get<uint32_t>())});
      }
      std::cout << e.Render() << ChoicesTable(l["choices"]) << "\n";
    }
  }
}

}  // namespace

absl::Status CmdLbExplain(const Options& o) {
  if (o.args.size() != 3 || o.args[1] != "explain")
    return absl::InvalidArgumentError("usage: shuntctl lb explain NAMESPACE/SERVICE");
  SHUNT_ASSIGN_OR_RETURN(
      Json r, AgentRequest(o, "GET", "/v1/lb/explain?service=" + http::PercentEncode(o.args[2])));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  for (const auto& s : r["services"]) {
    const std::string split = s["split"].get<std::string>();
    std::cout << s["service"].get<std::string>() << " " << s["address"].get<std::string>() << "/"
              << s["proto"].get<std::string>() << ": balancer " << s["balancer"].get<std::string>()
              << (split.empty() ? "" : " (TrafficSplit " + split + ")") << "\n";
    if (s["balancer"] == "p2c-ewma")
      std::cout
          << "  two distinct random backends per connection; the second wins only if over 20% "
             "lower\n"
             "  score = max(peak-EWMA latency, 100 us) in us x (open connections + 1); a failure "
             "counts as a 1 s sample\n";
    Table b({"BACKEND", "EWMA", "OPEN", "SCORE"});
    for (const auto& x : s["backends"])
      b.Add({Backend(x),
             x.contains("ewma_ms") ? absl::StrFormat("%.2fms", x["ewma_ms"].get<double>())
                                   : "(not measured)",
             absl::StrCat(x["open"].get<uint32_t>()), absl::StrCat(x["score"].get<uint32_t>())});
    std::cout << b.Render();
    if (s["choices"].empty()) {
      const size_t n = s["backends"].size();
      std::cout
          << (n == 0 ? "  no ready backend: connect() is refused (ECONNREFUSED)\n\n"
              : n == 1
                  ? "  one ready backend: every connection goes to it, nothing to choose\n\n"
                  : "  no recent choices (the kernel keeps the last 64 per CPU, all services)\n\n");
      if (s.value("l7", false)) PrintPerRequest(s);
      continue;
    }
    std::cout << ChoicesTable(s["choices"]) << "\n";
    if (s.value("l7", false)) PrintPerRequest(s);
  }
  return absl::OkStatus();
}

}  // namespace shunt::ctl
