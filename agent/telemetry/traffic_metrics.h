// The SMI TrafficMetrics API (metrics.smi-spec.io/v1alpha1), served by the
// agent from its flow windows, for what this node sees:
//   /apis/metrics.smi-spec.io/v1alpha1/namespaces[/{ns}]
//   /apis/metrics.smi-spec.io/v1alpha1/namespaces/{ns}/{kind}[/{name}[/edges]]
// kind: pods, deployments, statefulsets, daemonsets, replicasets, jobs.
// ?window=30s (default, as the SDK) up to 60s. At L4 a flow is the unit:
// success_count counts flows established and closed in order,
// failure_count refused, reset and denied ones; latencies are the
// request/response latency, unit ms. On an edge the node proxy's L7 layer
// carried HTTP requests on, the request is the unit (request_windows.h).
#pragma once

#include <cstdint>
#include <string>

#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/request_windows.h"

namespace shunt::telemetry {

struct HttpAnswer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// `path` without the query; `query` the part after '?', may be empty.
// Edges the L7 layer saw requests on count requests (`requests`, may be
// null: flows only).
HttpAnswer ServeTrafficMetrics(const std::string& path, const std::string& query,
                               const FlowAggregator& flows, int64_t now_wall_ns,
                               const RequestWindows* requests = nullptr);

}  // namespace shunt::telemetry
