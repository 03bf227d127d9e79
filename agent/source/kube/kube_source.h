// The "kube" source: the API server, read with list/watch by one reflector
// per resource (reflector.h). Each resource is one origin of the object
// store: a (re)list replaces the origin, a watch event upserts or deletes
// one object in it. The reflectors run on their own threads; everything
// they learn waits in a queue until the agent's loop drains it (fd()).
#pragma once

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/clock.h"
#include "agent/source/kube/kube_config.h"
#include "agent/source/kube/reflector.h"
#include "agent/source/source.h"

namespace shunt::source::kube {

class KubeSource : public Source {
 public:
  // Starts a reflector per resource. Errors name the server or the
  // configuration.
  static absl::StatusOr<std::unique_ptr<KubeSource>> Create(const KubeConfig& config,
                                                            std::vector<ResourceSpec> resources,
                                                            ReflectorOptions options,
                                                            const lib::Clock& clock);
  ~KubeSource() override;

  std::string name() const override { return "kube"; }
  int fd() const override { return queue_.fd(); }
  bool Drain() override;
  absl::Status Sync(model::ObjectStore& store) override;
  // Every resource has been listed once, or is known to be absent (a CRD
  // not installed).
  bool synced() const override;
  nlohmann::json StatusJson() const override;

  // The store origin of resource `i`: "kube:<resource name>".
  std::string Origin(size_t i) const { return "kube:" + resources_[i].spec.name; }

 private:
  struct Resource {
    ResourceSpec spec;
    std::string state = "starting";
    bool settled = false;
    std::unordered_set<std::string> keys;  // ns/name of the objects in the store
    uint64_t updates = 0;
  };
  KubeSource(KubeConfig config, std::vector<ResourceSpec> specs);
  void Apply(Update& u, model::ObjectStore& store);
  void ApplyState(const Update& u);

  KubeConfig config_;
  std::vector<Resource> resources_;
  UpdateQueue queue_;
  std::vector<Update> pending_;
  std::vector<std::unique_ptr<Reflector>> reflectors_;  // last: they push into queue_
};

}  // namespace shunt::source::kube
