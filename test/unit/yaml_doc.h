// Test helper: a YAML text as the JSON document the parsers read, converted
// the way the file source does.
#pragma once

#include <string>

#include "agent/source/yaml_json.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace shunt::testing {

inline nlohmann::json YamlDoc(const std::string& yaml) {
  auto doc = source::YamlToJson(YAML::Load(yaml));
  EXPECT_TRUE(doc.ok()) << doc.status();
  return doc.ok() ? *std::move(doc) : nlohmann::json();
}

}  // namespace shunt::testing
