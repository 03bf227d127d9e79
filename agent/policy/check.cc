#include "check.h"

#include "absl/strings/str_cat.h"
#include "shunt/abi/policy.h"

namespace shunt::policy {
namespace {

const model::Pod* FindPod(const model::Snapshot& s, const std::string& key) {
  for (const auto& p : s.pods)
    if (p.Key() == key) return &p;
  return nullptr;
}

}  // namespace

absl::StatusOr<CheckRequest> ParseCheckRequest(const nlohmann::json& j) {
  CheckRequest r;
  if (!j.is_object()) return absl::InvalidArgumentError("policy check: expected a JSON object");
  if (!j.contains("from") || !j["from"].is_string())
    return absl::InvalidArgumentError("policy check: --from NS/POD is required");
  if (!j.contains("to") || !j["to"].is_string())
    return absl::InvalidArgumentError("policy check: --to NS/POD is required");
  r.from = j["from"];
  r.to = j["to"];
  if (!j.contains("port") || !j["port"].is_number_integer() || j["port"] < 1 || j["port"] > 65535)
    return absl::InvalidArgumentError("policy check: --port must be 1-65535");
  r.port = j["port"].get<uint16_t>();
  if (j.contains("proto") && !j["proto"].is_string())
    return absl::InvalidArgumentError("policy check: --proto must be tcp or udp");
  const std::string proto = j.value("proto", "tcp");
  if (proto == "tcp") {
    r.proto = kTcp;
  } else if (proto == "udp") {
    r.proto = kUdp;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("policy check: --proto '", proto, "': expected tcp or udp"));
  }
  return r;
}

absl::StatusOr<nlohmann::json> Check(const CheckRequest& req, const model::Snapshot& snapshot,
                                     const CompiledPolicy& policy,
                                     const endpoints::IdentityAllocator& ids, uint32_t mode,
                                     const std::string& l7_node, bool l7_across_nodes) {
  const model::Pod* from = FindPod(snapshot, req.from);
  if (!from) return absl::NotFoundError(absl::StrCat("pod ", req.from, " is not in the config"));
  const model::Pod* to = FindPod(snapshot, req.to);
  if (!to) return absl::NotFoundError(absl::StrCat("pod ", req.to, " is not in the config"));
  auto identity = [&](const model::Pod& p) -> uint32_t {
    auto it = ids.all().find({p.namespace_, p.service_account});
    return it == ids.all().end() ? 0 : it->second;
  };
  const uint32_t src = identity(*from), dst = identity(*to);
  const std::string proto = req.proto == kUdp ? "udp" : "tcp";
  const std::string flow =
      absl::StrCat(from->namespace_, "/", from->service_account, " -> ", to->namespace_, "/",
                   to->service_account, " on ", proto, "/", req.port);
  nlohmann::json out = {
      {"from",
       {{"pod", from->Key()}, {"service_account", from->service_account}, {"identity", src}}},
      {"to", {{"pod", to->Key()}, {"service_account", to->service_account}, {"identity", dst}}},
      {"port", req.port},
      {"proto", proto},
      {"mode", mode == SHUNT_MODE_ENFORCE ? "enforce" : "permissive"},
  };
  if (from->Key() == to->Key()) {
    out.update({{"verdict", "allow"},
                {"decided_by", nullptr},
                {"reason", "a pod talking to itself is never policed"},
                {"effect", "allowed"}});
    return out;
  }
  const Decision d = Decide(policy, src, dst, req.port, req.proto);
  const std::string scope =
      d.matched_port == 0 ? "any port" : absl::StrCat("port ", d.matched_port);
  std::string target;
  if (auto it = policy.rules.find(d.rule_id); d.verdict && it != policy.rules.end())
    target = absl::StrCat("TrafficTarget ", it->second);
  if (d.verdict == SHUNT_VERDICT_ALLOW) {
    out.update({{"verdict", "allow"},
                {"decided_by", target},
                {"reason", absl::StrCat(target, " allows ", flow, " (", scope, ")")},
                {"effect", "allowed"}});
  } else if (d.verdict == SHUNT_VERDICT_L7 && req.proto == kTcp && !l7_node.empty() &&
             from->node_name == l7_node && (l7_across_nodes || to->node_name == l7_node)) {
    // Same node: this node's proxy judges; another node: that node's, on
    // the mTLS tunnel's stream (every node's agent runs alike).
    const std::string judge = to->node_name == l7_node
                                  ? absl::StrCat("node ", l7_node, "'s proxy")
                                  : absl::StrCat("the proxy of node ", to->node_name);
    out.update(
        {{"verdict", "l7"},
         {"decided_by", target},
         {"reason", absl::StrCat(target, " allows only HTTP routes for ", flow, " (", scope,
                                 "): ", judge, " judges each request against them (docs/l7.md)")},
         {"effect", mode == SHUNT_MODE_ENFORCE
                        ? "connected through the proxy's L7 layer; requests no route "
                          "grants get 403 (enforce mode)"
                        : "connected through the proxy's L7 layer; requests no route "
                          "grants are forwarded and reported (permissive mode)"}});
  } else if (d.verdict == SHUNT_VERDICT_L7) {
    out.update({{"verdict", "deny-l7"},
                {"decided_by", target},
                {"reason", absl::StrCat(target, " allows only HTTP routes for ", flow, " (", scope,
                                        "); no proxy's L7 layer takes this pair (UDP, native "
                                        "IPv6, another node's pod without --mtls, or no proxy "
                                        "running), so the grant opens nothing at L4")},
                {"effect", mode == SHUNT_MODE_ENFORCE
                               ? "connect() fails with EPERM (enforce mode)"
                               : "allowed, counted as a would-be denial (permissive mode)"}});
  } else {
    out.update({{"verdict", "deny"},
                {"decided_by", nullptr},
                {"reason", absl::StrCat("no TrafficTarget allows ", flow)},
                {"effect", mode == SHUNT_MODE_ENFORCE
                               ? (req.proto == kUdp ? "datagrams refused with EPERM (enforce mode)"
                                                    : "connect() fails with EPERM (enforce mode)")
                               : "allowed, counted as a would-be denial (permissive mode)"}});
  }
  return out;
}

}  // namespace shunt::policy
