// The file source's border: YAML documents become the JSON documents the
// API server would hand us, so everything after the source reads one
// format. Plain scalars resolve as YAML 1.2's core schema does (null,
// true/false, integers, floats; everything else is a string), plus YAML
// 1.1's yes/no/on/off as booleans, as kubectl reads them (but not y/n);
// quoted scalars are always strings.
#pragma once

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace shunt::source {

// InvalidArgument naming the line (1-based) for: a mapping key that is not a
// scalar, a key given twice, a string that is not valid UTF-8 (JSON output
// could not carry it), nesting deeper than 100 levels, more than a million
// values (aliases that expand without bound).
absl::StatusOr<nlohmann::json> YamlToJson(const YAML::Node& node);

}  // namespace shunt::source
