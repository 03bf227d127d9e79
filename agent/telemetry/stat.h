// Golden metrics over a recent window, grouped for `shuntctl stat` and
// `shuntctl top`: flows per second, success rate, requests per second and
// response latency percentiles, per workload, pod, or workload edge.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/request_windows.h"
#include "nlohmann/json.hpp"

namespace shunt::telemetry {

// group: "workload" (traffic each workload serves), "pod" (each pod serves),
// "edge" (source workload -> destination workload), "route" (HTTP requests
// through the node proxy's L7 layer per destination workload and route).
// Where the L7 layer saw requests (`requests`, may be null), they are the
// unit of success. InvalidArgument names a bad group or window.
absl::StatusOr<nlohmann::json> StatJson(const FlowAggregator& flows, int64_t now_wall_ns,
                                        int window_s, const std::string& group,
                                        const RequestWindows* requests = nullptr);

}  // namespace shunt::telemetry
