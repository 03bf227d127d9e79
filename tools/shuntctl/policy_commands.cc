#include "policy_commands.h"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "agent/lib/status_macros.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {
namespace {

std::string Clock(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1000000000);
  tm t{};
  localtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof(buf), "%H:%M:%S", &t);
  return absl::StrCat(buf, ".", absl::StrFormat("%03d", static_cast<int>((ns / 1000000) % 1000)));
}

}  // namespace

absl::Status CmdIdentities(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(auto maps, OpenMaps(o));
  SHUNT_ASSIGN_OR_RETURN(Json rows, DumpMap(*maps, "identities"));
  if (o.json) {
    std::cout << rows.dump(2) << "\n";
    return absl::OkStatus();
  }
  Table t({"IDENTITY", "NAMESPACE", "SERVICE-ACCOUNT", "PODS", "ON-THIS-NODE"});
  for (const auto& r : rows)
    t.Add({Str(r["identity"]), Str(r["namespace"]), Str(r["service_account"]), Str(r["pods"]),
           Str(r["local_pods"])});
  std::cout << t.Render();
  return absl::OkStatus();
}

absl::Status CmdPolicy(const Options& o) {
  if (o.args.size() != 1) return absl::InvalidArgumentError("usage: shuntctl policy [check ...]");
  SHUNT_ASSIGN_OR_RETURN(auto maps, OpenMaps(o));
  SHUNT_ASSIGN_OR_RETURN(Json rows, DumpMap(*maps, "policy"));
  SHUNT_ASSIGN_OR_RETURN(Json cfg, DumpMap(*maps, "config"));
  auto agent = AgentRequest(o, "GET", "/v1/status");
  if (o.json) {
    Json out = {{"mode", cfg[0]["mode"]}, {"entries", rows}};
    if (agent.ok()) out["problems"] = (*agent)["policy"]["problems"];
    std::cout << out.dump(2) << "\n";
    return absl::OkStatus();
  }
  std::cout << "Mode: " << Str(cfg[0]["mode"])
            << (Str(cfg[0]["mode"]) == "enforce"
                    ? " (traffic between meshed pods needs a TrafficTarget)\n"
                    : " (nothing is denied; would-be denials are counted)\n");
  Table t({"SOURCE", "DESTINATION", "PORT", "PROTO", "VERDICT", "TRAFFICTARGET"});
  bool l7 = false;
  for (const auto& r : rows) {
    l7 |= r["verdict"] == "l7";
    t.Add({Str(r["source"]), Str(r["destination"]), Str(r["port"]), Str(r["proto"]),
           r["verdict"] == "l7" ? "allow (L7*)" : Str(r["verdict"]), Str(r["traffic_target"])});
  }
  if (rows.empty())
    std::cout << "No entries: no TrafficTarget grants anything.\n";
  else
    std::cout << t.Render();
  if (l7)
    std::cout << "* HTTPRouteGroup rules: with the agents running their proxies (--mtls), each "
                 "request is judged by the destination node proxy's L7 layer (TCP; IPv6 "
                 "too where the proxies have an IPv6 --node-ip); "
                 "otherwise these pairs open nothing at L4 (docs/l7.md).\n";
  if (agent.ok()) {
    for (const auto& p : (*agent)["policy"]["problems"])
      std::cout << "PROBLEM " << Str(p["object"]) << ": " << Str(p["reason"]) << "\n";
  } else {
    std::cout << "(agent not reachable: dangling references are not shown)\n";
  }
  return absl::OkStatus();
}

absl::Status CmdPolicyCheck(const Options& o) {
  Json req = Json::object();
  for (const char* f : {"from", "to"}) {
    auto it = o.flags.find(f);
    if (it == o.flags.end())
      return absl::InvalidArgumentError(
          absl::StrCat("policy check: --", f, " NAMESPACE/POD is required"));
    req[f] = it->second;
  }
  int port = 0;
  auto p = o.flags.find("port");
  if (p == o.flags.end() || !absl::SimpleAtoi(p->second, &port) || port < 1 || port > 65535)
    return absl::InvalidArgumentError("policy check: --port 1-65535 is required");
  req["port"] = port;
  req["proto"] = o.flags.count("proto") ? o.flags.at("proto") : "tcp";
  SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "POST", "/v1/policy/check", req.dump()));
  if (o.json) {
    std::cout << r.dump(2) << "\n";
    return absl::OkStatus();
  }
  std::cout << "Verdict:  " << Str(r["verdict"]) << "\n"
            << "From:     " << Str(r["from"]["pod"]) << " (serviceaccount "
            << Str(r["from"]["service_account"]) << ", identity " << Str(r["from"]["identity"])
            << ")\n"
            << "To:       " << Str(r["to"]["pod"]) << " (serviceaccount "
            << Str(r["to"]["service_account"]) << ", identity " << Str(r["to"]["identity"]) << ") "
            << Str(r["proto"]) << "/" << Str(r["port"]) << "\n"
            << "Why:      " << Str(r["reason"]) << "\n"
            << "Mode:     " << Str(r["mode"]) << " -> " << Str(r["effect"]) << "\n";
  return absl::OkStatus();
}

absl::Status CmdDrops(const Options& o) {
  uint64_t after = 0;
  bool header = false;
  Table t({"TIME", "TYPE", "HOOK", "ENFORCED", "PROTO", "SOURCE", "DESTINATION", "IDENTITIES"});
  for (;;) {
    SHUNT_ASSIGN_OR_RETURN(Json r, AgentRequest(o, "GET", absl::StrCat("/v1/drops?after=", after)));
    after = r["next"].get<uint64_t>();
    for (const auto& e : r["events"]) {
      if (o.json) {
        std::cout << e.dump() << "\n";
        continue;
      }
      const std::vector<std::string> row = {
          Clock(e["time_ns"].get<int64_t>()), Str(e["type"]), Str(e["hook"]),
          e["enforced"].get<bool>() ? "yes" : "no (permissive)", Str(e["proto"]), Str(e["src_ip"]),
          // [v6]:port, as URLs and ss(8) write an IPv6 address and port.
          absl::StrContains(Str(e["dst_ip"]), ':')
              ? absl::StrCat("[", Str(e["dst_ip"]), "]:", Str(e["dst_port"]))
              : absl::StrCat(Str(e["dst_ip"]), ":", Str(e["dst_port"])),
          // The proxy's refusals: the identity its certificate proved, and why.
          e["type"] == "mtls" ? absl::StrCat(Str(e["reason"]), ": ", Str(e["peer_identity"]))
          // A denied request: who asked what, why, and the route not granted.
          : e["type"] == "l7"
              ? absl::StrCat(Str(e["src_identity"]), "->", Str(e["dst_identity"]), " ",
                             e.contains("method") ? Str(e["method"]) + " " + Str(e["path"]) + " "
                                                  : std::string(),
                             Str(e["reason"]),
                             e.contains("route") ? " (" + Str(e["route"]) + ")" : std::string())
              : absl::StrCat(Str(e["src_identity"]), "->", Str(e["dst_identity"]))};
      if (o.follow) {
        // Streaming: fixed columns, since a table cannot be aligned in advance.
        constexpr char kLine[] = "%-12s  %-14s  %-8s  %-15s  %-5s  %-15s  %-21s  %s\n";
        if (!header)
          std::cout << absl::StrFormat(kLine, "TIME", "TYPE", "HOOK", "ENFORCED", "PROTO", "SOURCE",
                                       "DESTINATION", "IDENTITIES");
        header = true;
        std::cout << absl::StrFormat(kLine, row[0], row[1], row[2], row[3], row[4], row[5], row[6],
                                     row[7]);
      } else {
        t.Add(row);
      }
    }
    if (!o.follow) break;
    std::cout.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (!o.json) {
    if (t.empty())
      std::cout << "No denials recorded since the agent started.\n";
    else
      std::cout << t.Render();
  }
  return absl::OkStatus();
}

}  // namespace shunt::ctl
