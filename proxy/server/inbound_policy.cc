#include "proxy/server/inbound_policy.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "shunt/abi/endpoint.h"
#include "shunt/abi/pins.h"
#include "shunt/abi/policy.h"

namespace shunt::proxy {

absl::StatusOr<InboundPolicy> InboundPolicy::Open(const std::string& bpffs) {
  lib::PinLayout pins(bpffs);
  InboundPolicy p;
  const std::pair<lib::UniqueFd*, const char*> maps[] = {{&p.ipcache_, SHUNT_MAP_IPCACHE},
                                                         {&p.ipcache6_, SHUNT_MAP_IPCACHE6},
                                                         {&p.policy_, SHUNT_MAP_POLICY},
                                                         {&p.config_, SHUNT_MAP_CONFIG}};
  for (auto& [fd, name] : maps) {
    auto m = lib::OpenPin(pins.Map(name), /*read_only=*/true);
    if (!m.ok()) return m.status();
    *fd = *std::move(m);
  }
  return p;
}

bool InboundPolicy::Lookup(const Destination& d, uint32_t* identity, uint32_t* flags) const {
  shunt_ipcache_entry e{};
  const int rc = d.family == AF_INET ? bpf_map_lookup_elem(ipcache_.get(), d.addr.data(), &e)
                                     : bpf_map_lookup_elem(ipcache6_.get(), d.addr.data(), &e);
  if (rc != 0) return false;
  *identity = e.identity;
  *flags = e.flags;
  return true;
}

InboundVerdict InboundPolicy::Judge(const Runtime& rt, const std::string& peer,
                                    absl::string_view forwarded, const Destination& dst,
                                    bool l7_layer) const {
  uint32_t dst_id = 0, dst_flags = 0;
  if (!Lookup(dst, &dst_id, &dst_flags) || !(dst_flags & SHUNT_IPC_F_LOCAL))
    return {.reason = "not-a-local-pod", .http_status = 404};
  auto src = ForwardedFor(forwarded);
  if (!src.ok()) return {.reason = "no-source", .http_status = 400};
  uint32_t src_id = 0, src_flags = 0;
  if (!Lookup(*src, &src_id, &src_flags)) return {.reason = "unknown-source", .http_status = 403};
  // The certificate must be the identity of the pod the stream says it
  // comes from: a node cannot speak for pods it does not run.
  const uint32_t peer_id = rt.IdentityId(peer);
  if (peer_id == 0 || peer_id != src_id) return {.reason = "identity-mismatch", .http_status = 403};
  shunt_policy_key key{};
  key.src_identity = src_id;
  key.dst_identity = dst_id;
  key.dport = htons(dst.port);
  key.proto = IPPROTO_TCP;
  shunt_policy_value v{};
  bool found = bpf_map_lookup_elem(policy_.get(), &key, &v) == 0;
  if (!found) {
    key.dport = 0;
    found = bpf_map_lookup_elem(policy_.get(), &key, &v) == 0;
  }
  if (found && v.verdict == SHUNT_VERDICT_ALLOW) return {.allowed = true};
  if (found && v.verdict == SHUNT_VERDICT_L7 && l7_layer) return {.allowed = true, .l7 = true};
  const char* reason = found && v.verdict == SHUNT_VERDICT_L7 ? "l7-only" : "policy-denied";
  if (!Enforcing()) return {.allowed = true, .reason = reason};
  return {.reason = reason, .http_status = 403};
}

bool InboundPolicy::Enforcing() const {
  uint32_t zero = 0;
  shunt_config cfg{};
  return bpf_map_lookup_elem(config_.get(), &zero, &cfg) != 0 || cfg.mode == SHUNT_MODE_ENFORCE;
}

absl::StatusOr<Destination> ForwardedFor(absl::string_view forwarded) {
  // One element, one pair: for=ADDRESS (RFC 7239); an IPv6 one quoted in brackets.
  absl::string_view v = forwarded;
  if (!absl::ConsumePrefix(&v, "for=") && !absl::ConsumePrefix(&v, "For="))
    return absl::InvalidArgumentError("Forwarded: no for=");
  const bool quoted = absl::ConsumePrefix(&v, "\"");
  if (quoted && !absl::ConsumeSuffix(&v, "\""))
    return absl::InvalidArgumentError("Forwarded: unterminated quote");
  Destination d;
  std::string text(v);
  if (quoted && absl::ConsumePrefix(&v, "[") && absl::ConsumeSuffix(&v, "]")) {
    d.family = AF_INET6;
    text = std::string(v);
    if (inet_pton(AF_INET6, text.c_str(), d.addr.data()) != 1)
      return absl::InvalidArgumentError("Forwarded: not an IPv6 address");
    return d;
  }
  if (inet_pton(AF_INET, text.c_str(), d.addr.data()) != 1)
    return absl::InvalidArgumentError("Forwarded: not an IPv4 address");
  return d;
}

}  // namespace shunt::proxy
