#include "service_commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {

absl::Status CmdServices(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "services"));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  Table t({"SERVICE", "ADDRESS", "PROTO", "BALANCER", "SPLIT", "BACKEND", "POD", "WEIGHT", "LIVE SHARE", "FLOWS"});
  for (const auto& s : r["services"]) {
    const std::string svc = s["service"].get<std::string>();
    const std::string split = s["split"].get<std::string>().empty() ? "-" : s["split"].get<std::string>();
    if (s["backends"].empty()) {
      t.Add({svc, s["address"], s["proto"], s["balancer"], split, "(no ready backend: refused)", "-", "-", "-", "-"});
      continue;
    }
    bool first = true;
    for (const auto& b : s["backends"]) {
      t.Add({first ? svc : "", first ? s["address"].get<std::string>() : "", first ? s["proto"].get<std::string>() : "",
             first ? s["balancer"].get<std::string>() : "", first ? split : "", b["address"].get<std::string>(),
             b.value("pod", "-"), absl::StrFormat("%.1f%%", b["weight_percent"].get<double>()),
             absl::StrFormat("%.1f%%", b["live_share_percent"].get<double>()), absl::StrCat(b["flows"].get<uint64_t>())});
      first = false;
    }
  }
  std::cout << (t.empty() ? std::string("No services.\n") : t.Render());
  for (const auto& p : r["problems"]) std::cout << "problem: " << p.dump() << "\n";
  return absl::OkStatus();
}

}  // namespace shunt::ctl
