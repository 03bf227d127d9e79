#include "kube_source.h"

#include "absl/strings/str_cat.h"
#include "agent/source/kube/watch_stream.h"

namespace shunt::source::kube {

KubeSource::KubeSource(KubeConfig config, std::vector<ResourceSpec> specs)
    : config_(std::move(config)) {
  for (auto& s : specs) resources_.push_back({.spec = std::move(s)});
}

absl::StatusOr<std::unique_ptr<KubeSource>> KubeSource::Create(const KubeConfig& config,
                                                               std::vector<ResourceSpec> resources,
                                                               ReflectorOptions options,
                                                               const lib::Clock& clock) {
  std::unique_ptr<KubeSource> s(new KubeSource(config, resources));
  if (s->queue_.fd() < 0) return absl::InternalError("kube: eventfd failed");
  auto tokens = std::make_shared<TokenSource>(config, clock);
  if (auto t = tokens->Token(); !t.ok()) return t.status();
  for (size_t i = 0; i < resources.size(); ++i) {
    auto client = ApiClient::Create(config, tokens);
    if (!client.ok()) return client.status();
    s->reflectors_.push_back(std::make_unique<Reflector>(i, std::move(resources[i]),
                                                         *std::move(client), s->queue_, options));
  }
  for (auto& r : s->reflectors_) r->Start();
  return s;
}

KubeSource::~KubeSource() {
  // Ask them all first (each notices within a second), then join.
  for (auto& r : reflectors_) r->RequestStop();
  reflectors_.clear();
}

bool KubeSource::Drain() {
  for (Update& u : queue_.TakeAll()) pending_.push_back(std::move(u));
  for (const Update& u : pending_)
    if (u.type != Update::Type::kState) return true;
  // State lines only: nothing for the store, no reconcile.
  for (Update& u : pending_) ApplyState(u);
  pending_.clear();
  return false;
}

void KubeSource::ApplyState(const Update& u) {
  Resource& r = resources_[u.resource];
  r.state = u.state;
  r.settled |= u.settled;
}

void KubeSource::Apply(Update& u, model::ObjectStore& store) {
  Resource& r = resources_[u.resource];
  const std::string origin = Origin(u.resource);
  switch (u.type) {
    case Update::Type::kState:
      ApplyState(u);
      return;
    case Update::Type::kReplace: {
      r.keys.clear();
      // ObjectKey, not value(): metadata that is not an object, or a name
      // that is not a string, must not throw on the agent's loop.
      for (const auto& d : u.docs) r.keys.insert(ObjectKey(d.doc));
      store.SetOrigin(origin, std::move(u.docs));
      r.settled = true;
      break;
    }
    case Update::Type::kUpsert: {
      r.keys.insert(ObjectKey(u.doc.doc));
      store.Upsert(origin, std::move(u.doc));
      break;
    }
    case Update::Type::kDelete:
      r.keys.erase(absl::StrCat(u.namespace_, "/", u.name));
      // The store keys namespaced objects under "default" when they name none.
      store.Delete(origin, r.spec.kind, u.namespace_.empty() ? "default" : u.namespace_, u.name);
      break;
  }
  ++r.updates;
}

absl::Status KubeSource::Sync(model::ObjectStore& store) {
  for (Update& u : queue_.TakeAll()) pending_.push_back(std::move(u));
  for (Update& u : pending_) Apply(u, store);
  pending_.clear();
  return absl::OkStatus();
}

bool KubeSource::synced() const {
  for (const Resource& r : resources_)
    if (!r.settled) return false;
  return true;
}

nlohmann::json KubeSource::StatusJson() const {
  nlohmann::json resources = nlohmann::json::array();
  for (const Resource& r : resources_)
    resources.push_back({{"resource", r.spec.name},
                         {"state", r.state},
                         {"synced", r.settled},
                         {"objects", r.keys.size()},
                         {"updates", r.updates}});
  return {{"source", name()},
          {"server", config_.server},
          {"credentials", config_.where},
          {"synced", synced()},
          {"resources", std::move(resources)}};
}

}  // namespace shunt::source::kube
