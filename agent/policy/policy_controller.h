// Policy: SMI TrafficTargets and their routes become the kernel's policy
// map (compiled incrementally, written as differences), and the data
// path's denials are logged. Serves /v1/drops and /v1/policy/check on the
// local API; owns `status` keys mode, policy and denials_seen.
#pragma once

#include <functional>
#include <memory>
#include <set>

#include "agent/controller.h"
#include "agent/endpoints/identity_allocator.h"
#include "agent/policy/compiler.h"
#include "agent/policy/deny_log.h"
#include "agent/policy/policy_writer.h"

namespace shunt::policy {

class PolicyController : public agent::Controller {
 public:
  struct Deps {
    uint32_t mode;                             // SHUNT_MODE_*
    endpoints::IdentityAllocator* identities;  // shared with endpoints
    endpoints::IdentityAllocator* rule_ids;
    std::unique_ptr<PolicyWriter> writer;  // Load()ed
    std::unique_ptr<DenyLog> denials;      // nullptr: none (tests)
    // Policy entries one namespace's TrafficTargets may take together.
    size_t entries_per_namespace = PolicyCompiler::kDefaultNamespaceBudget;
    // This node's name while its proxy's L7 layer is up, else empty
    // (`shuntctl policy check` tells such pairs apart).
    std::function<std::string()> l7_node;
    // Whether the L7 layer reaches other nodes' pods too (through the
    // mTLS tunnel; --mtls=off: only this node's). Unset: it does.
    std::function<bool()> l7_across_nodes;
  };
  explicit PolicyController(Deps deps);

  std::string_view name() const override { return "policy"; }
  void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) override;
  size_t Apply() override;
  void Tick(int64_t now_ms) override;
  std::vector<int> PollFds() const override;
  void AddRoutes(http::Router& api, http::Router& metrics) override;
  void AddStatus(nlohmann::json& status) const override;
  void AddMetrics(std::string& out) const override;
  void AddWarnings(std::vector<std::string>& lines) const override;

  // The identities the compiled policy names.
  const auto& identities_in_use() const { return compiler_.policy().identities; }
  const DenyLog* denials() const { return d_.denials.get(); }
  const CompiledPolicy& policy() const { return compiler_.policy(); }
  // A refusal the mTLS proxy reported (its JSON event), for `shuntctl drops`.
  void RecordProxyRefusal(const nlohmann::json& event);

 private:
  static nlohmann::json ProxyRefusalJson(const LoggedDenial& d);
  http::Response Drops(const http::Request& r) const;
  http::Response Check(const http::Request& r) const;

  Deps d_;
  PolicyCompiler compiler_;
  std::shared_ptr<const model::Snapshot> snapshot_;
  lib::DiffReport last_apply_;
  uint64_t written_total_ = 0, deleted_total_ = 0;  // since start
};

}  // namespace shunt::policy
