// Golden metrics over a recent window, grouped for `shuntctl stat` and
// `shuntctl top`: flows per second, success rate, requests per second and
// response latency percentiles, per workload, pod, or workload edge.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/telemetry/flow_aggregator.h"
#include "nlohmann/json.hpp"

namespace shunt::telemetry {

// group: "workload" (traffic each workload serves), "pod" (each pod serves),
// "edge" (source workload -> destination workload). InvalidArgument names
// a bad group or window.
absl::StatusOr<nlohmann::json> StatJson(const FlowAggregator& flows, int64_t now_wall_ns,
                                        int window_s, const std::string& group);

}  // namespace shunt::telemetry
