// shuntctl: inspect and manage a Shunt node from its pinned maps and the
// agent's local API. Works from the pins alone while the agent is down.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/datapath/uninstall.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/counters.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/pins.h"
#include "tools/common/flag_set.h"
#include "tools/shuntctl/args.h"
#include "tools/shuntctl/cert_commands.h"
#include "tools/shuntctl/cli.h"
#include "tools/shuntctl/flow_commands.h"
#include "tools/shuntctl/kubectl_plugin.h"
#include "tools/shuntctl/map_decode.h"
#include "tools/shuntctl/policy_commands.h"
#include "tools/shuntctl/service_commands.h"
#include "tools/shuntctl/stat_commands.h"
#include "tools/shuntctl/table.h"

namespace shunt::ctl {
namespace {

std::string Ago(int64_t unix_time) {
  int64_t s = time(nullptr) - unix_time;
  if (s < 120) return absl::StrCat(s, "s");
  if (s < 7200) return absl::StrCat(s / 60, "m");
  if (s < 172800) return absl::StrCat(s / 3600, "h");
  return absl::StrCat(s / 86400, "d");
}

Json LinksJson(const Options& o) {
  Json links = Json::array();
  lib::PinLayout layout(o.bpffs);
  for (const std::string& name : lib::PinnedLinkList()) {
    Json l = {{"name", name}, {"pinned", false}};
    if (auto fd = lib::OpenLinkPin(layout.Link(name)); fd.ok()) {
      l["pinned"] = true;
      if (auto f = lib::DescribeLink(fd->get()); f.ok()) {
        l.update({{"link_id", f->id},
                  {"type", f->type},
                  {"attach_type", f->attach_type},
                  {"prog_id", f->prog_id},
                  {"prog_name", f->prog_name},
                  {"target_id", f->target}});
      }
    }
    links.push_back(l);
  }
  return links;
}

absl::StatusOr<Json> MapsJson(const Options& o) {
  Json maps = Json::array();
  lib::PinLayout layout(o.bpffs);
  for (const auto& m : lib::PinnedMapList()) {
    Json j = {{"name", m.pin_name}, {"what", m.what}};
    auto fd = lib::OpenPin(layout.Map(m.pin_name), true);
    if (!fd.ok()) {
      j["error"] = std::string(fd.status().message());
    } else if (auto f = lib::DescribeMap(fd->get()); f.ok()) {
      j.update({{"id", f->id},
                {"type", f->type},
                {"key_size", f->key_size},
                {"value_size", f->value_size},
                {"max_entries", f->max_entries},
                {"entries", f->entries}});
    }
    maps.push_back(j);
  }
  return maps;
}

std::string Fill(const Json& m) {
  if (!m.contains("max_entries") || m["max_entries"].get<uint64_t>() == 0) return "-";
  double pct = 100.0 * m["entries"].get<double>() / m["max_entries"].get<double>();
  char buf[32];
  if (pct > 0 && pct < 0.1) return "<0.1%";
  std::snprintf(buf, sizeof(buf), "%.1f%%", pct);
  return buf;
}

absl::Status CmdStatus(const Options& o) {
  Json out;
  auto agent = AgentRequest(o, "GET", "/v1/status");
  Json agent_json;
  if (agent.ok()) agent_json = *agent;
  const bool running = agent.ok() && agent_json.is_object();
  out["agent"] = running ? agent_json : Json{{"running", false}};
  out["agent"]["running"] = running;
  if (!running) out["agent"]["error"] = std::string(agent.status().message());

  auto maps = OpenMaps(o);
  out["pins"] = {{"dir", o.bpffs}, {"present", maps.ok()}};
  if (maps.ok()) {
    if (auto meta = (*maps)->meta().Lookup(0); meta.ok())
      out["pins"].update(
          {{"abi_version", meta->abi_version}, {"installed_at_unix", meta->installed_at_unix}});
    out["links"] = LinksJson(o);
    SHUNT_ASSIGN_OR_RETURN(out["maps"], MapsJson(o));
    SHUNT_ASSIGN_OR_RETURN(lib::Counters c, lib::ReadCounters((*maps)->counters_fd()));
    for (int i = 0; i < SHUNT_CTR_MAX; ++i) out["counters"][lib::CounterName(i)] = c[i];
    // Flows kept off or moved off the short-circuit, by reason.
    out["flows_on_tcp"] = Json::object();
    if (auto fd = lib::OpenPin(lib::PinLayout(o.bpffs).Map(SHUNT_MAP_TCP_REASONS), true); fd.ok()) {
      SHUNT_ASSIGN_OR_RETURN(lib::TcpReasonCounts r, lib::ReadTcpReasons(fd->get()));
      for (int i = SHUNT_TCP_NONE + 1; i < SHUNT_TCP_REASON_MAX; ++i)
        out["flows_on_tcp"][lib::TcpReasonName(i)] = r[i];
    }
  }
  if (o.json) {
    std::cout << out.dump(2) << "\n";
    return maps.ok() ? absl::OkStatus() : maps.status();
  }

  const auto& a = out["agent"];
  if (running) {
    std::cout << "Agent:     running (pid " << a["pid"] << ", node " << a["node"].get<std::string>()
              << ", up " << Ago(a["started_at_unix"].get<int64_t>()) << ", " << a["reconciles"]
              << " reconciles, " << a["reconcile_errors"] << " errors)\n";
  } else {
    std::cout << "Agent:     NOT RUNNING (" << a["error"].get<std::string>()
              << "); the data path below keeps working from the pins\n";
  }
  if (!maps.ok()) {
    std::cout << "Pins:      none in " << o.bpffs << "\n";
    return maps.status();
  }
  std::cout << "Pins:      " << o.bpffs << " (ABI v" << out["pins"]["abi_version"] << ", installed "
            << Ago(out["pins"]["installed_at_unix"].get<int64_t>()) << " ago)\n\nPrograms:\n";
  Table links({"  LINK", "TYPE", "ATTACH", "PROGRAM", "PROG-ID", "TARGET"});
  for (const auto& l : out["links"]) {
    if (!l["pinned"].get<bool>()) {
      links.Add({"  " + l["name"].get<std::string>(), "-", "NOT ATTACHED"});
      continue;
    }
    std::string target = l["type"] == "cgroup" ? "cgroup " : "map ";
    links.Add({"  " + l["name"].get<std::string>(), l.value("type", "?"),
               l.value("attach_type", "?"), l.value("prog_name", "?"),
               std::to_string(l.value("prog_id", 0)),
               target + std::to_string(l.value("target_id", 0ull))});
  }
  std::cout << links.Render() << "\nMaps:\n";
  Table mt({"  MAP", "TYPE", "ENTRIES", "MAX", "FILL"});
  for (const auto& m : out["maps"])
    mt.Add({"  " + m["name"].get<std::string>(), m.value("type", "?"),
            std::to_string(m.value("entries", 0ull)), std::to_string(m.value("max_entries", 0ull)),
            Fill(m)});
  std::cout << mt.Render() << "\nCounters:\n";
  Table ct({"  COUNTER", "VALUE"});
  for (const auto& [k, v] : out["counters"].items())
    ct.Add({"  " + k, std::to_string(v.get<uint64_t>())});  // ABI order
  std::cout << ct.Render();
  std::cout << "\nFlows on TCP between local pods, by reason (docs/short-circuit.md):\n";
  Table rt({"  REASON", "FLOWS"});
  for (const auto& [k, v] : out["flows_on_tcp"].items())
    rt.Add({"  " + k, std::to_string(v.get<uint64_t>())});
  std::cout << rt.Render();

  if (running) {
    const auto& cfg = a["config"];
    const auto& src = a["source"];
    if (src.value("source", "") == "kube") {
      // The API server: each resource's reflector and what it holds.
      std::cout << "\nSource:    kube, " << src.value("server", "") << " ("
                << src.value("credentials", "") << "), "
                << (src.value("synced", false) ? "synced" : "NOT SYNCED yet") << "\n";
      Table rt({"  RESOURCE", "STATE", "OBJECTS"});
      for (const auto& r : src["resources"])
        rt.Add({"  " + r.value("resource", ""), r.value("state", ""),
                std::to_string(r.value("objects", 0))});
      std::cout << rt.Render();
      std::cout << "Config:    " << cfg["objects"] << " objects, " << cfg["pods"] << " pods\n";
    } else {
      std::cout << "\nConfig:    " << a["config_dir"].get<std::string>() << ": " << cfg["files"]
                << " files, " << cfg["objects"] << " objects, " << cfg["pods"] << " pods\n";
    }
    for (const auto& p : cfg["problems"])
      std::cout << "  REJECTED " << p["object"].get<std::string>() << ": "
                << p["reason"].get<std::string>() << "\n";
    for (const auto& n : cfg["notices"])
      std::cout << "  skipped  " << n["object"].get<std::string>() << ": "
                << n["reason"].get<std::string>() << "\n";
    int meshed = 0;
    for (const auto& p : a["local_pods"]) meshed += p["problem"].get<std::string>().empty();
    std::cout << "Local pods: " << a["local_pods"].size() << " (" << meshed << " meshed)\n";
    if (a.contains("short_circuit") && !a["short_circuit"].value("on", true))
      std::cout << "  WARNING  same-node short-circuit off, every flow takes TCP: "
                << a["short_circuit"].value("off_because", "") << "\n";
    for (const auto& p : a["local_pods"])
      if (!p["problem"].get<std::string>().empty())
        std::cout << "  NOT MESHED " << p["pod"].get<std::string>() << ": "
                  << p["problem"].get<std::string>() << "\n";
    for (const auto& e : a["last_apply"]["errors"])
      std::cout << "  MAP ERROR " << e.get<std::string>() << "\n";
    const auto& pol = a["policy"];
    std::cout << "Policy:    mode " << a["mode"].get<std::string>() << ", "
              << pol["traffic_targets"] << " TrafficTargets, " << pol["entries"] << " entries, "
              << a["denials_seen"] << " denials seen (shuntctl drops)\n";
    if (pol["l7_targets"].get<int>() > 0)
      std::cout << "  WARNING  " << pol["l7_targets"]
                << " TrafficTarget(s) grant only HTTP routes: judged per request by the "
                   "proxies' L7 layer (with --mtls; TCP, IPv6 with an IPv6 --node-ip); otherwise "
                   "those grants open "
                   "nothing at L4 (enforce mode denies those pairs, permissive mode reports them; "
                   "docs/l7.md)\n";
    for (const auto& p : pol["problems"])
      std::cout << "  PROBLEM  " << p["object"].get<std::string>() << ": "
                << p["reason"].get<std::string>() << "\n";
    for (const auto& e : pol["last_apply"]["errors"])
      std::cout << "  MAP ERROR " << e.get<std::string>() << "\n";
  }
  return absl::OkStatus();
}

absl::Status CmdEndpoints(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(auto maps, OpenMaps(o));
  SHUNT_ASSIGN_OR_RETURN(Json rows, DumpMap(*maps, "endpoints"));
  if (o.json) {
    std::cout << rows.dump(2) << "\n";
    return absl::OkStatus();
  }
  Table t({"NAMESPACE", "NAME", "IP", "IDENTITY", "SERVICE-ACCOUNT", "NETNS-COOKIE", "PATH"});
  for (const auto& r : rows)
    t.Add({r.value("namespace", "?"), r.value("name", "?"), r["ip"],
           std::to_string(r["identity"].get<uint32_t>()), r.value("service_account", "?"),
           std::to_string(r["netns_cookie"].get<uint64_t>()), r.value("path", "?")});
  std::cout << t.Render();
  return absl::OkStatus();
}

std::string Cell(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : v) parts.push_back(Cell(e));
    return parts.empty() ? "-" : absl::StrJoin(parts, ",");
  }
  return v.dump();
}

absl::Status CmdMaps(const Options& o) {
  if (o.args.size() >= 2 && o.args[1] == "dump") {
    if (o.args.size() != 3) return absl::InvalidArgumentError("usage: shuntctl maps dump NAME");
    SHUNT_ASSIGN_OR_RETURN(auto maps, OpenMaps(o));
    SHUNT_ASSIGN_OR_RETURN(Json rows, DumpMap(*maps, o.args[2]));
    if (o.json) {
      std::cout << rows.dump(2) << "\n";
      return absl::OkStatus();
    }
    if (rows.empty()) {
      std::cout << "(empty)\n";
      return absl::OkStatus();
    }
    std::vector<std::string> cols;
    for (const auto& [k, v] : rows[0].items()) cols.push_back(k);
    std::vector<std::string> header;
    for (const auto& c : cols) {
      std::string h = c;
      for (auto& ch : h) ch = ch == '_' ? '-' : std::toupper(ch);
      header.push_back(h);
    }
    Table t(header);
    for (const auto& r : rows) {
      std::vector<std::string> row;
      for (const auto& c : cols) row.push_back(r.contains(c) ? Cell(r[c]) : "-");
      t.Add(row);
    }
    std::cout << t.Render();
    return absl::OkStatus();
  }
  if (o.args.size() != 1) return absl::InvalidArgumentError("usage: shuntctl maps [dump NAME]");
  SHUNT_ASSIGN_OR_RETURN(auto maps, OpenMaps(o));
  SHUNT_ASSIGN_OR_RETURN(Json rows, MapsJson(o));
  if (o.json) {
    std::cout << rows.dump(2) << "\n";
    return absl::OkStatus();
  }
  Table t({"MAP", "TYPE", "KEY", "VALUE", "ENTRIES", "MAX", "FILL", "WHAT"});
  for (const auto& m : rows)
    t.Add({m["name"], m.value("type", "?"), std::to_string(m.value("key_size", 0u)),
           std::to_string(m.value("value_size", 0u)), std::to_string(m.value("entries", 0ull)),
           std::to_string(m.value("max_entries", 0ull)), Fill(m), m["what"]});
  std::cout << t.Render();
  return absl::OkStatus();
}

absl::Status CmdUninstall(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(std::string msg, datapath::Uninstall(o.bpffs));
  if (o.json)
    std::cout << Json{{"result", msg}}.dump() << "\n";
  else
    std::cout << msg << "\n";
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  // kubectl runs `kubectl shunt ...` as kubectl-shunt: the same binary,
  // which then runs its command in an agent pod instead of here.
  if (argc > 0 && IsPluginInvocation(argv[0])) return RunKubectlPlugin(argc, argv);
  auto opts = ParseArgs(argc, argv);
  if (!opts.ok()) return cli::UsageError("shuntctl", opts.status());
  if (opts->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const std::string& cmd = opts->args[0];
  absl::Status s;
  if (cmd == "status") {
    s = CmdStatus(*opts);
  } else if (cmd == "endpoints") {
    s = CmdEndpoints(*opts);
  } else if (cmd == "maps") {
    s = CmdMaps(*opts);
  } else if (cmd == "identities") {
    s = CmdIdentities(*opts);
  } else if (cmd == "policy") {
    s = opts->args.size() >= 2 && opts->args[1] == "check" ? CmdPolicyCheck(*opts)
                                                           : CmdPolicy(*opts);
  } else if (cmd == "drops") {
    s = CmdDrops(*opts);
  } else if (cmd == "flows") {
    s = CmdFlows(*opts);
  } else if (cmd == "stat") {
    s = CmdStat(*opts);
  } else if (cmd == "top") {
    s = CmdTop(*opts);
  } else if (cmd == "services") {
    s = CmdServices(*opts);
  } else if (cmd == "lb") {
    s = CmdLbExplain(*opts);
  } else if (cmd == "uninstall") {
    s = CmdUninstall(*opts);
  } else if (cmd == "ca") {
    s = CmdCa(*opts);
  } else if (cmd == "certs") {
    s = CmdCerts(*opts);
  } else {
    std::fprintf(stderr, "shuntctl: unknown command '%s' (see shuntctl --help)\n", cmd.c_str());
    return 2;
  }
  if (!s.ok()) {
    // A mistake in the command line (exit 2) gets the same hint as a bad flag.
    const bool usage = absl::IsInvalidArgument(s);
    std::fprintf(stderr, "shuntctl %s: %s%s\n", cmd.c_str(), std::string(s.message()).c_str(),
                 usage ? " (see shuntctl --help)" : "");
    return usage ? 2 : 1;
  }
  return 0;
}

}  // namespace
}  // namespace shunt::ctl

int main(int argc, char** argv) { return shunt::ctl::Main(argc, argv); }
