// The Namespace fields this version uses: the short-circuit opt-out.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "agent/model/field.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

// The annotation that turns the same-node short-circuit off for a pod, or
// for every pod of a namespace (docs/short-circuit.md).
inline constexpr char kShortCircuitAnnotation[] = "shunt.dev/short-circuit";

struct Namespace {
  std::string namespace_;  // always empty: namespaces are cluster-scoped
  std::string name;        // metadata.name
  bool short_circuit_off = false;
};

// metadata.annotations["shunt.dev/short-circuit"]: "off" -> true, "on" or
// absent -> false; anything else is InvalidArgument naming the annotation.
absl::StatusOr<bool> ShortCircuitOff(const Field& meta);

absl::StatusOr<Namespace> ParseNamespace(const nlohmann::json& doc);

}  // namespace shunt::model
