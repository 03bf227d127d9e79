#include "agent/certs/certs_controller.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace shunt::certs {
namespace {

std::string KeyText(const std::string& ns, const std::string& sa) { return ns + "/" + sa; }

// Renewal checks between reconciles: often enough for a lifetime of
// minutes, cheap (a comparison per identity).
constexpr int64_t kCheckEveryMs = 1000;

}  // namespace

CertsController::CertsController(Deps deps) : deps_(std::move(deps)) {}

absl::Time CertsController::Now() const { return absl::FromUnixNanos(deps_.clock->RealtimeNs()); }

// Half-life: a renewal that fails has half a lifetime to succeed.
static absl::Time RenewAt(const IssuedCertificate& c) {
  return c.not_before + (c.not_after - c.not_before) / 2;
}

bool CertsController::RenewalDue(const IssuedCertificate& c, absl::Time now) const {
  return now >= RenewAt(c);
}

void CertsController::Plan(const std::shared_ptr<const model::Snapshot>& snapshot,
                           bool /*changed*/) {
  wanted_.clear();
  reserved_pods_.clear();
  if (!deps_.authority) return;
  // The node proxy's own: the server end of every tunnel to this node.
  wanted_[{kNodeProxyNamespace, kNodeProxyServiceAccount}];
  for (const model::Pod& pod : snapshot->pods) {
    if (pod.node_name != deps_.options.node || pod.host_network) continue;
    if (pod.namespace_ == kNodeProxyNamespace && pod.service_account == kNodeProxyServiceAccount) {
      // A workload with the proxies' identity could pose as any node's proxy.
      reserved_pods_.push_back(pod.namespace_ + "/" + pod.name);
      continue;
    }
    wanted_[{pod.namespace_, pod.service_account}].push_back(pod.name);
  }
}

bool CertsController::IssueDue(absl::Time now, size_t* failed, bool all) {
  bool changed = false;
  for (const auto& [key, pods] : wanted_) {
    const std::string text = KeyText(key.first, key.second);
    auto it = issued_.find(text);
    if (it != issued_.end() && !all && !RenewalDue(it->second, now)) continue;
    auto id = MakeSpiffeId(deps_.options.trust_domain, key.first, key.second);
    absl::StatusOr<IssuedCertificate> cert =
        id.ok() ? deps_.authority->Issue(*id, deps_.options.ttl, now)
                : absl::StatusOr<IssuedCertificate>(id.status());
    if (!cert.ok()) {
      // The old certificate, if any, stays in use until it expires.
      const std::string why = std::string(cert.status().message());
      if (errors_[text] != why) spdlog::error("certs: {}: {}", text, why);
      errors_[text] = why;
      ++issue_errors_total_;
      ++*failed;
      continue;
    }
    spdlog::info("certs: {} {} serial {} until {}", it == issued_.end() ? "issued" : "renewed",
                 cert->id.Uri(), cert->serial_hex, absl::FormatTime(cert->not_after));
    errors_.erase(text);
    issued_[text] = std::move(*cert);
    ++issued_total_;
    changed = true;
  }
  return changed;
}

size_t CertsController::Apply() {
  size_t failed = 0;
  bool changed = false;
  for (auto it = issued_.begin(); it != issued_.end();) {
    const IssuedCertificate& c = it->second;
    if (wanted_.count({c.id.ns, c.id.service_account}) == 0) {
      spdlog::info("certs: {} no longer has a pod here; certificate dropped", c.id.Uri());
      errors_.erase(it->first);
      it = issued_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  changed |= IssueDue(Now(), &failed);
  if (changed) PublishAll();
  return failed;
}

void CertsController::Tick(int64_t now_ms) {
  if (!deps_.authority || now_ms - last_check_ms_ < kCheckEveryMs) return;
  last_check_ms_ = now_ms;
  size_t failed = 0;
  if (IssueDue(Now(), &failed)) PublishAll();
}

void CertsController::PublishAll() const {
  if (!deps_.publish) return;
  std::vector<IssuedCertificate> all;
  for (const auto& [k, c] : issued_) all.push_back(c);
  deps_.publish(all);
}

nlohmann::json CertsController::ListJson() const {
  const absl::Time now = Now();
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& [text, c] : issued_) {
    nlohmann::json pods = nlohmann::json::array();
    if (auto w = wanted_.find({c.id.ns, c.id.service_account}); w != wanted_.end())
      for (const auto& p : w->second) pods.push_back(p);
    rows.push_back(
        {{"identity", c.id.Uri()},
         {"namespace", c.id.ns},
         {"service_account", c.id.service_account},
         {"serial", c.serial_hex},
         {"not_before", absl::FormatTime(absl::RFC3339_sec, c.not_before, absl::UTCTimeZone())},
         {"not_after", absl::FormatTime(absl::RFC3339_sec, c.not_after, absl::UTCTimeZone())},
         {"expires_in_s", absl::ToInt64Seconds(c.not_after - now)},
         {"renew_in_s", std::max<int64_t>(0, absl::ToInt64Seconds(RenewAt(c) - now))},
         {"pods", pods}});
  }
  for (const auto& [text, why] : errors_) {
    if (issued_.count(text)) continue;
    rows.push_back({{"identity", text}, {"error", why}});
  }
  return rows;
}

void CertsController::AddRoutes(http::Router& api, http::Router& /*metrics*/) {
  // Every certificate anew, now (after a suspected key compromise, or to
  // check that rotation drops nothing): new tunnels use the new ones, the
  // old keep what they carry.
  api.Add("POST", "/v1/certs/rotate", [this](const http::Request&) {
    if (!deps_.authority) return http::Error(409, "certs rotate: mTLS is off on this node");
    size_t failed = 0;
    if (IssueDue(Now(), &failed, /*all=*/true)) PublishAll();
    if (failed > 0)
      return http::Error(500, absl::StrCat("certs rotate: ", failed,
                                           " identities could not be issued (see shuntctl certs)"));
    return http::Json({{"rotated", issued_.size()}, {"certificates", ListJson()}});
  });
  api.Add("GET", "/v1/certs", [this](const http::Request&) {
    return http::Json({{"mtls", deps_.options.mode},
                       {"trust_domain", deps_.options.trust_domain},
                       {"certificates", ListJson()}});
  });
}

void CertsController::AddStatus(nlohmann::json& status) const {
  nlohmann::json s = {{"mode", deps_.options.mode},
                      {"trust_domain", deps_.options.trust_domain},
                      {"identities", issued_.size()},
                      {"issue_errors", errors_.size()}};
  if (deps_.authority) {
    s["ca_not_after"] =
        absl::FormatTime(absl::RFC3339_sec, deps_.authority->not_after(), absl::UTCTimeZone());
    s["cert_ttl_s"] = absl::ToInt64Seconds(deps_.options.ttl);
  }
  status["mtls"] = s;
}

void CertsController::AddMetrics(std::string& out) const {
  absl::StrAppend(&out,
                  "# HELP shunt_certificates Workload certificates this agent holds (one per "
                  "identity with a local pod).\n"
                  "# TYPE shunt_certificates gauge\n"
                  "shunt_certificates ",
                  issued_.size(), "\n",
                  "# HELP shunt_certificates_issued_total Workload certificates issued and "
                  "renewed since the agent started.\n"
                  "# TYPE shunt_certificates_issued_total counter\n"
                  "shunt_certificates_issued_total ",
                  issued_total_, "\n",
                  "# HELP shunt_certificate_issue_errors_total Failed issues and renewals.\n"
                  "# TYPE shunt_certificate_issue_errors_total counter\n"
                  "shunt_certificate_issue_errors_total ",
                  issue_errors_total_, "\n");
  if (issued_.empty()) return;
  absl::StrAppend(&out,
                  "# HELP shunt_certificate_expiry_timestamp_seconds When each identity's "
                  "certificate expires (Unix time).\n"
                  "# TYPE shunt_certificate_expiry_timestamp_seconds gauge\n");
  for (const auto& [text, c] : issued_) {
    absl::StrAppend(&out, "shunt_certificate_expiry_timestamp_seconds{identity=\"", c.id.Uri(),
                    "\"} ", absl::ToUnixSeconds(c.not_after), "\n");
  }
}

void CertsController::AddWarnings(std::vector<std::string>& lines) const {
  for (const auto& [text, why] : errors_) lines.push_back("certs: " + text + ": " + why);
  for (const auto& pod : reserved_pods_)
    lines.push_back(absl::StrCat("certs: pod ", pod, " runs as ", kNodeProxyNamespace, "/",
                                 kNodeProxyServiceAccount,
                                 ", the node proxies' identity: it gets no certificate, and its "
                                 "connections to other nodes are refused"));
}

}  // namespace shunt::certs
