// SMI objects written back as the JSON documents they were read from
// (the Kubernetes shape: apiVersion, kind, metadata, spec), so that what
// the agent hands its proxy is parsed there by the same ParseTrafficTarget,
// ParsePortRoute and ParseHttpRouteGroup, with the same checks: one
// definition of a valid object, not two.
// For every valid object x: Parse(ToJson(x)) == x (unit-tested).
#pragma once

#include "agent/model/smi.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

nlohmann::json TrafficTargetToJson(const TrafficTarget& t);
nlohmann::json PortRouteToJson(const PortRoute& r);
nlohmann::json HttpRouteGroupToJson(const HttpRouteGroup& g);

}  // namespace shunt::model
