// The certificates feature of the agent: a workload certificate for each
// identity (namespace, service account) with a pod on this node, issued by
// the cluster CA (--ca-dir) and renewed at half its lifetime, so a
// certificate in use is never near expiry and a renewal that fails has
// half a lifetime to succeed. Certificates of identities no local pod uses
// any more are dropped. Each new set goes to `publish` (the proxy's
// channel); the old certificate stays valid, so connections made with it
// are not dropped. `GET /v1/certs` (shuntctl certs) lists them, never keys.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "agent/certs/authority.h"
#include "agent/controller.h"
#include "agent/lib/clock.h"

namespace shunt::certs {

struct CertsOptions {
  std::string node;
  std::string mode = "off";  // --mtls: off, permissive, strict
  std::string trust_domain = "cluster.local";
  absl::Duration ttl = absl::Hours(24);  // --cert-ttl
};

class CertsController : public agent::Controller {
 public:
  using Publish = std::function<void(const std::vector<IssuedCertificate>&)>;
  struct Deps {
    const lib::Clock* clock = nullptr;
    CertsOptions options;
    std::unique_ptr<Authority> authority;  // null when --mtls=off
    Publish publish;                       // may be empty
  };
  explicit CertsController(Deps deps);

  std::string_view name() const override { return "certs"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override;
  void Tick(int64_t now_ms) override;
  void AddRoutes(http::Router& api, http::Router& metrics) override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;
  void AddWarnings(std::vector<std::string>& lines) const override;

  // Identity key "ns/sa" -> its certificate (tests, the API).
  const std::map<std::string, IssuedCertificate>& issued() const { return issued_; }
  nlohmann::json ListJson() const;

 private:
  using Key = std::pair<std::string, std::string>;  // namespace, service account
  std::vector<std::string> reserved_pods_;          // pods with the node proxy's identity
  absl::Time Now() const;
  bool RenewalDue(const IssuedCertificate& c, absl::Time now) const;
  // Issues what is missing or due; true if the set changed.
  // `all`: every identity now, due or not (a rotation asked for).
  bool IssueDue(absl::Time now, size_t* failed, bool all = false);
  // Hands every certificate held to `publish` (the whole set: the proxy
  // replaces its own).
  void PublishAll() const;

  Deps deps_;
  std::map<Key, std::vector<std::string>> wanted_;  // identity -> its local pods
  std::map<std::string, IssuedCertificate> issued_;
  std::map<std::string, std::string> errors_;  // identity -> last issue error
  uint64_t issued_total_ = 0;
  uint64_t issue_errors_total_ = 0;
  int64_t last_check_ms_ = 0;
};

}  // namespace shunt::certs
