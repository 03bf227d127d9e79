// Keeps the kernel's latency scores (shunt_lb_scores_v1) equal to what the
// LatencyScorer says now, for the backends of services that balance by
// latency (SHUNT_LB_P2C_EWMA); backends no such service has any more are
// removed. Called several times a second: only changed scores are written.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "agent/lib/shadowed_map.h"
#include "agent/lib/typed_map.h"
#include "agent/services/latency_scorer.h"
#include "agent/services/service_plan.h"
#include "shunt/abi/service.h"

namespace shunt::services {

class LbScoreWriter {
 public:
  using ScoreMap = lib::KvMap<shunt_backend, shunt_lb_score>;
  explicit LbScoreWriter(lib::TypedMap<shunt_backend, shunt_lb_score> map)
      : map_(std::make_shared<lib::TypedMap<shunt_backend, shunt_lb_score>>(std::move(map))) {}
  // Any map: unit tests pass an in-memory one (lib/memory_map.h).
  explicit LbScoreWriter(std::shared_ptr<ScoreMap> map) : map_(std::move(map)) {}

  // Takes over what an earlier agent wrote, so scores of backends that are
  // gone meanwhile are removed by the next Write.
  absl::Status Load();

  lib::DiffReport Write(const Plan& plan, const LatencyScorer& scorer, int64_t now_ns);

 private:
  std::shared_ptr<ScoreMap> map_;
  absl::flat_hash_map<BackendAddr, uint32_t> written_;
};

}  // namespace shunt::services
