// shuntctl as the tests run it: the real binary against a node's agent.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/sim.h"

namespace shunt::e2e {

// `shuntctl drops -o json` against the node's agent: one event per line.
absl::StatusOr<std::vector<nlohmann::json>> ShuntctlDrops(const TestNode& node);

}  // namespace shunt::e2e
