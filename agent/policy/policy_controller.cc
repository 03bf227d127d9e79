#include "policy_controller.h"

#include <arpa/inet.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/ip.h"
#include "agent/model/problem_json.h"
#include "agent/policy/check.h"
#include "spdlog/spdlog.h"

namespace shunt::policy {
namespace {

const char* HookName(uint8_t hook) {
  switch (hook) {
    case SHUNT_HOOK_SENDMSG4:
      return "sendmsg4";
    case SHUNT_HOOK_TC:
      return "tc";
    case SHUNT_HOOK_CONNECT6:
      return "connect6";
    case SHUNT_HOOK_TC_FROM_POD:
      return "tc-from-pod";
    case SHUNT_HOOK_SENDMSG6:
      return "sendmsg6";
    default:
      return "connect4";
  }
}

// IANA protocol numbers the drops are likely to show; others by number.
std::string ProtoName(uint8_t proto) {
  switch (proto) {
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "icmpv6";
    case 132:
      return "sctp";
    default:
      return absl::StrCat("ip-proto-", proto);
  }
}

}  // namespace

PolicyController::PolicyController(Deps deps)
    : d_(std::move(deps)), compiler_(*d_.identities, *d_.rule_ids, d_.entries_per_namespace) {}

void PolicyController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) {
  snapshot_ = snapshot;
  if (changed) compiler_.Update(*snapshot);
  std::set<endpoints::IdentityAllocator::Key> targets;
  for (const auto& t : snapshot->traffic_targets) targets.insert({t.namespace_, t.name});
  d_.rule_ids->Retain(targets);
}

size_t PolicyController::Apply() {
  const std::vector<EntryKey> changed = compiler_.TakeChanges();
  last_apply_ = d_.writer->Apply(compiler_.policy(), *d_.identities, &changed);
  written_total_ += last_apply_.written;
  deleted_total_ += last_apply_.deleted;
  for (const auto& e : last_apply_.errors) spdlog::error("policy maps: {}", e);
  if (last_apply_.written || last_apply_.deleted)
    spdlog::info("policy: {} written, {} deleted, {} unchanged ({} entries)", last_apply_.written,
                 last_apply_.deleted, last_apply_.unchanged, d_.writer->entries());
  return last_apply_.errors.size();
}

void PolicyController::Tick(int64_t) {
  // The data path wakes the loop only once many denials wait (a wake-up per
  // event would be an interrupt inside every audited connect()), so the
  // loop's turns drain it; cheap when the ring is empty.
  if (d_.denials) d_.denials->Consume();
}

std::vector<int> PolicyController::PollFds() const {
  if (!d_.denials) return {};
  return {d_.denials->fd()};
}

void PolicyController::AddRoutes(http::Router& api, http::Router&) {
  api.Add("GET", "/v1/drops", [this](const http::Request& r) { return Drops(r); });
  api.Add("POST", "/v1/policy/check", [this](const http::Request& r) { return Check(r); });
}

// GET /v1/drops?after=SEQ: the denials newer than SEQ.
http::Response PolicyController::Drops(const http::Request& r) const {
  uint64_t after = 0;
  auto it = r.query.find("after");
  if (it != r.query.end() && !it->second.empty() && !absl::SimpleAtoi(it->second, &after))
    return http::Error(400, absl::StrCat("drops: '", it->second, "' is not a sequence number"));
  nlohmann::json events = nlohmann::json::array();
  uint64_t last = after;
  const uint64_t total = d_.denials ? d_.denials->total() : 0;
  if (d_.denials) {
    for (const auto& d : d_.denials->Since(after, 1000)) {
      last = d.seq;
      if (d.proxy) {
        events.push_back(ProxyRefusalJson(d));
        continue;
      }
      const shunt_deny_event& e = d.event;
      events.push_back({{"seq", d.seq},
                        {"time_ns", d.wall_time_ns},
                        {"type", e.type == SHUNT_EVENT_SPOOF_DROP       ? "spoofed-source"
                                 : e.type == SHUNT_EVENT_POLICY_DENY_L7 ? "http-only-grant"
                                 : e.type == SHUNT_EVENT_FRAGMENT_DROP  ? "fragment"
                                 : e.type == SHUNT_EVENT_PROTOCOL_DENY  ? "protocol"
                                 : e.type == SHUNT_EVENT_UNKNOWN_POD    ? "unknown-pod"
                                 : e.type == SHUNT_EVENT_PLAINTEXT      ? "plaintext-from-node"
                                                                        : "policy"},
                        {"hook", HookName(e.hook)},
                        {"enforced", e.enforced != 0},
                        {"proto", ProtoName(e.proto)},
                        {"src_ip", d.ipv6 ? lib::Ipv6String(&d.saddr6) : lib::Ipv4String(e.saddr)},
                        {"dst_ip", d.ipv6 ? lib::Ipv6String(&d.daddr6) : lib::Ipv4String(e.daddr)},
                        {"dst_port", ntohs(e.dport)},
                        {"src_identity", e.src_identity},
                        {"dst_identity", e.dst_identity}});
    }
  }
  return http::Json({{"events", events}, {"next", last}, {"total", total}});
}

void PolicyController::RecordProxyRefusal(const nlohmann::json& e) {
  if (!d_.denials || !e.is_object()) return;
  LoggedDenial d;
  d.wall_time_ns = e.value("unix_ms", int64_t{0}) * 1'000'000;
  d.proxy = ProxyRefusal{.reason = e.value("reason", ""),
                         .peer = e.value("peer", ""),
                         .source = e.value("source", ""),
                         .destination = e.value("destination", ""),
                         .type = e.value("type", "mtls") == "l7" ? "l7" : "mtls",
                         .enforced = e.value("enforced", true),
                         .route = e.value("route", ""),
                         .method = e.value("method", ""),
                         .path = e.value("path", ""),
                         .destination_identity = e.value("destination_identity", "")};
  d.event.enforced = d.proxy->enforced ? 1 : 0;
  d_.denials->Append(std::move(d));
}

// A proxy refusal in /v1/drops' shape: the tunnel's peer identity and the
// reason where a kernel denial has identity numbers.
nlohmann::json PolicyController::ProxyRefusalJson(const LoggedDenial& d) {
  const ProxyRefusal& p = *d.proxy;
  // "ip:port" or "[ip6]:port".
  std::string ip = p.destination, port;
  if (!ip.empty() && ip[0] == '[') {
    if (const size_t close = ip.find(']'); close != std::string::npos) {
      port = close + 2 < ip.size() ? ip.substr(close + 2) : "";
      ip = ip.substr(1, close - 1);
    }
  } else if (const size_t colon = ip.rfind(':'); colon != std::string::npos) {
    port = ip.substr(colon + 1);
    ip = ip.substr(0, colon);
  }
  uint32_t port_num = 0;
  (void)absl::SimpleAtoi(port, &port_num);
  nlohmann::json j = {{"seq", d.seq},
                      {"time_ns", d.wall_time_ns},
                      {"type", p.type},
                      {"hook", "proxy"},
                      {"enforced", p.enforced},
                      {"proto", "tcp"},
                      {"reason", p.reason},
                      {"peer_identity", p.peer},
                      {"src_ip", p.source},
                      {"dst_ip", ip},
                      {"dst_port", port_num},
                      {"src_identity", p.peer},
                      {"dst_identity", p.destination_identity}};
  // A denied request: which route was not granted, and the request.
  if (!p.route.empty()) j["route"] = p.route;
  if (!p.method.empty()) j["method"] = p.method;
  if (!p.path.empty()) j["path"] = p.path;
  return j;
}

// POST /v1/policy/check {"from": "ns/pod", "to": "ns/pod", "port": N, "proto": "tcp"}
http::Response PolicyController::Check(const http::Request& r) const {
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  auto req = ParseCheckRequest(j.is_discarded() ? nlohmann::json() : j);
  if (!req.ok()) return http::Error(400, std::string(req.status().message()));
  if (!snapshot_) return http::Error(503, "policy check: no objects loaded yet");
  auto out = policy::Check(*req, *snapshot_, compiler_.policy(), *d_.identities, d_.mode,
                           d_.l7_node ? d_.l7_node() : std::string(),
                           !d_.l7_across_nodes || d_.l7_across_nodes());
  if (!out.ok()) return http::Error(400, std::string(out.status().message()));
  return http::Json(*out);
}

void PolicyController::AddStatus(nlohmann::json& status) const {
  status["mode"] = d_.mode == SHUNT_MODE_ENFORCE ? "enforce" : "permissive";
  status["policy"] = {{"traffic_targets", snapshot_ ? snapshot_->traffic_targets.size() : 0},
                      {"entries", compiler_.policy().entries.size()},
                      {"l7_targets", compiler_.policy().l7_targets},
                      {"problems", model::ProblemsJson(compiler_.policy().problems)},
                      {"last_apply",
                       {{"written", last_apply_.written},
                        {"written_total", written_total_},
                        {"deleted_total", deleted_total_},
                        {"deleted", last_apply_.deleted},
                        {"unchanged", last_apply_.unchanged},
                        {"errors", last_apply_.errors}}}};
  status["denials_seen"] = d_.denials ? d_.denials->total() : 0;
}

void PolicyController::AddMetrics(std::string& out) const {
  absl::StrAppend(&out,
                  "# HELP shunt_policy_entries Entries of the kernel's policy map.\n"
                  "# TYPE shunt_policy_entries gauge\n",
                  "shunt_policy_entries ", compiler_.policy().entries.size(), "\n",
                  "# HELP shunt_policy_denials_total Denials (and would-be denials in permissive "
                  "mode) the data path reported.\n"
                  "# TYPE shunt_policy_denials_total counter\n",
                  "shunt_policy_denials_total ", d_.denials ? d_.denials->total() : 0, "\n",
                  "# HELP shunt_policy_map_writes_total Policy map entries written and deleted "
                  "since the agent started (a change that changes nothing writes none).\n"
                  "# TYPE shunt_policy_map_writes_total counter\n",
                  "shunt_policy_map_writes_total{op=\"written\"} ", written_total_, "\n",
                  "shunt_policy_map_writes_total{op=\"deleted\"} ", deleted_total_, "\n");
}

void PolicyController::AddWarnings(std::vector<std::string>& lines) const {
  for (const auto& p : compiler_.policy().problems) lines.push_back("policy: " + p.ToString());
  if (compiler_.policy().l7_targets > 0)
    lines.push_back(absl::StrCat(
        "policy: ", compiler_.policy().l7_targets, " TrafficTarget(s) grant only HTTP routes: ",
        !d_.l7_node || d_.l7_node().empty()
            ? "no proxy's L7 layer is up on this node (docs/l7.md), so "
        : !d_.l7_across_nodes || d_.l7_across_nodes()
            ? "the proxies' L7 layer judges each request (TCP; native IPv6 when the proxies "
              "have an IPv6 --node-ip); for UDP "
            : "this node's proxy judges each request between this node's pods (TCP; native "
              "IPv6 when it has an IPv6 --node-ip; --mtls=off: no tunnel carries them to other "
              "nodes); to other nodes' pods and for UDP ",
        "those grants open nothing at L4: enforce mode denies those pairs, permissive mode "
        "reports them (docs/l7.md)"));
}

}  // namespace shunt::policy
