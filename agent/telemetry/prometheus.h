// The Prometheus text exposition (format 0.0.4) of the per-edge golden
// metrics and of the data path's health (maps, counters, flow records).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "agent/telemetry/flow_aggregator.h"

namespace shunt::telemetry {

struct MapLevel {
  std::string name;
  uint64_t entries = 0, max_entries = 0;
};

struct AgentHealth {
  std::vector<MapLevel> maps;
  std::vector<std::pair<std::string, uint64_t>> datapath_counters;  // name, value
  // Flows kept off or moved off the short-circuit: reason name, count.
  std::vector<std::pair<std::string, uint64_t>> tcp_reasons;
  uint64_t flow_records = 0, flow_records_malformed = 0;
  uint64_t flow_records_lost = 0;  // the kernel found the ring buffer full
  FlowAggregator::Totals aggregator;
};

std::string RenderPrometheus(const std::vector<std::pair<EdgeKey, EdgeStats>>& edges,
                             const AgentHealth& health);

}  // namespace shunt::telemetry
