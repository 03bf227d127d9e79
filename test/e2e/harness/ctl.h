// shuntctl as the tests run it: the real binary against a node's agent.
#pragma once

#include <sys/types.h>

#include <string>
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

// `shuntctl ARGS -o json` against the node's agent: one JSON document
// (stat, top, status).
absl::StatusOr<nlohmann::json> ShuntctlJson(const TestNode& node, const std::string& args);

// GET http://HOST:PORT/path from inside the node's network namespace (where
// its agent runs). The body for a 200 answer, else an error with the status line.
absl::StatusOr<std::string> HttpGetInNode(const TestNode& node, const std::string& host_port,
                                          const std::string& path);

// Starts `shuntctl --api-socket SOCKET args...` (a --follow command) with its
// stdout in `out`, and returns once it has asked the agent a first time: it
// is then asleep until its next request (a follower sleeps nowhere else), so
// whatever happens from here on reaches it as news. The caller ends it with
// KillAndReap.
absl::StatusOr<pid_t> StartFollower(const TestNode& node, const std::vector<std::string>& args,
                                    const std::string& out);

// The first line of `file` (without its newline) once it has one.
absl::StatusOr<std::string> WaitFirstLine(const std::string& file, int timeout_ms = 5000);

// Polls ShuntctlFlows(args) until it lists at least `n` flows (5 s at most);
// DeadlineExceeded, with what it listed last, if it never does.
absl::StatusOr<std::vector<nlohmann::json>> WaitFlows(const TestNode& node, const std::string& args,
                                                      size_t n);

}  // namespace shunt::e2e
