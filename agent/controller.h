// What each feature of the agent is to its loop: a controller owns the
// feature's state, turns object snapshots into its part of the kernel maps
// (through writers it was given), serves its routes, and reports its
// metrics and its section of `status`. The agent's loop (agent.cc) states
// the order of the controllers once and runs them; it knows nothing of any
// one feature's insides.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/http/router.h"
#include "agent/model/objects.h"
#include "nlohmann/json.hpp"

namespace shunt::agent {

class Controller {
 public:
  virtual ~Controller() = default;
  virtual std::string_view name() const = 0;

  // Phase one of a reconcile: compute this feature's plan from `snapshot`
  // (`changed`: it differs from the last one seen). No map writes, so
  // every controller has planned (and allocated identities) before any
  // writes.
  virtual void Plan(const std::shared_ptr<const model::Snapshot>& snapshot, bool changed) = 0;
  // Asked on the agent's rescan timer: true when something outside the
  // objects changed that this feature must reconcile (a pod's network
  // namespace appeared).
  virtual bool WantsReconcile(int64_t /*now_ms*/) { return false; }
  // Phase two: bring this feature's maps to its plan, as differences.
  // Returns the number of writes that failed (each logged).
  virtual size_t Apply() = 0;
  // Every turn of the loop (and when one of PollFds() is readable): cheap
  // work that follows the data path between reconciles.
  virtual void Tick(int64_t /*now_ms*/) {}
  virtual std::vector<int> PollFds() const { return {}; }

  // Routes on the local API (unix socket) and the metrics listener (TCP).
  virtual void AddRoutes(http::Router& /*api*/, http::Router& /*metrics*/) {}
  // Keys of `status` this feature owns.
  virtual void AddStatus(nlohmann::json& status) const = 0;
  // Prometheus families (text format 0.0.4) this feature owns.
  virtual void AddMetrics(std::string& /*out*/) const {}
  // What is wrong now, one line each ("pod demo/a: not meshed: ..."); the
  // agent logs them when they change.
  virtual void AddWarnings(std::vector<std::string>& /*lines*/) const {}
};

}  // namespace shunt::agent
