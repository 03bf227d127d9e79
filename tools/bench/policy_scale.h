// A synthetic cluster for the policy scale benchmark: pods spread over
// namespaces and service accounts, and TrafficTargets with TCPRoutes, built
// in memory (no YAML) so the benchmark times compiling and applying, not
// parsing.
#pragma once

#include "agent/model/objects.h"

namespace shunt::bench {

struct ScaleShape {
  int pods = 5000;
  int targets = 10000;
  int namespaces = 50;
  int sources_per_target = 2;
};

model::Objects SyntheticCluster(const ScaleShape& shape);

}  // namespace shunt::bench
