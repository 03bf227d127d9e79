// shuntctl as the tests run it: the real binary against a node's agent.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/sim.h"

namespace shunt::e2e {

// `shuntctl drops -o json` against the node's agent: one event per line.
absl::StatusOr<std::vector<nlohmann::json>> ShuntctlDrops(const TestNode& node);

// `shuntctl flows -o json [args]` against the node's agent: one flow per line.
absl::StatusOr<std::vector<nlohmann::json>> ShuntctlFlows(const TestNode& node,
                                                          const std::string& args = "");

// GET http://HOST:PORT/path from inside the node's network namespace (where
// its agent runs). The body for a 200 answer, else an error with the status line.
absl::StatusOr<std::string> HttpGetInNode(const TestNode& node, const std::string& host_port,
                                          const std::string& path);

// Polls ShuntctlFlows(args) until it lists at least `n` flows (3 s at most).
absl::StatusOr<std::vector<nlohmann::json>> WaitFlows(const TestNode& node, const std::string& args,
                                                      size_t n);

}  // namespace shunt::e2e
