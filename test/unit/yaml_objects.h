// Test helper: objects written as YAML (documents separated by ---), fed to
// an ObjectStore the way the file source feeds it, so controller tests get
// the snapshots the agent's loop would hand them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/model/object_store.h"
#include "agent/source/yaml_json.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace shunt::testing {

class YamlObjects {
 public:
  // Replaces every object with those of `yaml` and publishes. Every object
  // must be valid: a test's typo is a failure, not a silently missing object.
  std::shared_ptr<const model::Snapshot> Publish(const std::string& yaml) {
    std::vector<model::Document> docs;
    for (const YAML::Node& node : YAML::LoadAll(yaml)) {
      auto doc = source::YamlToJson(node);
      EXPECT_TRUE(doc.ok()) << doc.status();
      if (doc.ok()) docs.push_back({.doc = *std::move(doc)});
    }
    store_.SetOrigin("test.yaml", std::move(docs));
    auto snapshot = store_.Publish();
    for (const auto& p : snapshot->problems) ADD_FAILURE() << "rejected: " << p.ToString();
    for (const auto& n : snapshot->notices) ADD_FAILURE() << "skipped: " << n.ToString();
    return snapshot;
  }

 private:
  model::ObjectStore store_;
};

}  // namespace shunt::testing
