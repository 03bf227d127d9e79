#include "tools/shuntctl/cert_commands.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "agent/certs/authority.h"
#include "agent/lib/status_macros.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {
namespace {

std::string Duration(int64_t s) {
  if (s < 0) return "expired";
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  if (s < 172800) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

}  // namespace

absl::Status CmdCa(const Options& o) {
  if (o.args.size() != 2 || o.args[1] != "init")
    return absl::InvalidArgumentError("ca: the only verb is 'init' (shuntctl ca init --dir DIR)");
  auto dir = o.flags.find("dir");
  if (dir == o.flags.end() || dir->second.empty())
    return absl::InvalidArgumentError("ca init: --dir DIR is required");
  SHUNT_RETURN_IF_ERROR(certs::InitAuthority(dir->second, absl::Now()));
  const std::string msg =
      absl::StrCat("wrote ", dir->second, "/", certs::kCaCertFile, " and ", dir->second, "/",
                   certs::kCaKeyFile, " (ECDSA P-256, valid 10 years)");
  if (o.json)
    std::cout << Json{{"result", msg}}.dump() << "\n";
  else
    std::cout << msg << "\n";
  return absl::OkStatus();
}

absl::Status CmdCerts(const Options& o) {
  if (o.args.size() == 2 && o.args[1] == "rotate") {
    SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "POST", "/v1/certs/rotate", "{}"));
    if (o.json) {
      std::cout << r.dump(2) << "\n";
    } else {
      std::cout << "issued " << r.value("rotated", 0)
                << " certificates anew; new tunnels use them, open ones finish with the old\n";
    }
    return absl::OkStatus();
  }
  if (o.args.size() > 1)
    return absl::InvalidArgumentError(
        absl::StrCat("certs: unknown verb '", o.args[1], "' (the only one is 'rotate')"));
  SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "GET", "/v1/certs"));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  if (r.value("mtls", "off") == "off") {
    std::cout << "mTLS is off on this node (shunt-agent --mtls=off): no workload certificates.\n";
    return absl::OkStatus();
  }
  Table t({"IDENTITY", "SERIAL", "NOT-AFTER", "EXPIRES-IN", "RENEW-IN", "PODS"});
  for (const auto& c : r["certificates"]) {
    if (c.contains("error")) {
      t.Add({c["identity"].get<std::string>(), "-", "-", "-", "-",
             "error: " + c["error"].get<std::string>()});
      continue;
    }
    std::string pods;
    for (const auto& p : c["pods"])
      absl::StrAppend(&pods, pods.empty() ? "" : ",", p.get<std::string>());
    t.Add({c["identity"].get<std::string>(), c["serial"].get<std::string>(),
           c["not_after"].get<std::string>(), Duration(c["expires_in_s"].get<int64_t>()),
           Duration(c["renew_in_s"].get<int64_t>()), pods.empty() ? "-" : pods});
  }
  std::cout << "trust domain " << r.value("trust_domain", "?") << ", mtls " << r.value("mtls", "?")
            << "\n";
  std::cout << (t.empty() ? std::string("No local workloads.\n") : t.Render());
  return absl::OkStatus();
}

}  // namespace shunt::ctl
