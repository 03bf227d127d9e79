// Where objects come from. A source reads Kubernetes objects from
// somewhere (a directory, the API server) and delivers them, as documents,
// to the object store; everything after the store is the same whatever the
// source. The agent's loop polls fd() and calls Sync() once it is quiet.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "agent/model/object_store.h"
#include "nlohmann/json.hpp"

namespace shunt::source {

class Source {
 public:
  virtual ~Source() = default;

  // "file", "kube": for logs and status.
  virtual std::string name() const = 0;
  // Becomes readable when something may have changed; -1 if never.
  virtual int fd() const = 0;
  // Consumes what made fd() readable; true when a Sync() should follow.
  virtual bool Drain() = 0;
  // Brings the store up to date with what the source sees now. An error
  // means the source as a whole could not be read (the directory vanished,
  // the API server is unreachable): the store keeps the last good state.
  // Problems with single objects are in the store's snapshot, not here.
  virtual absl::Status Sync(model::ObjectStore& store) = 0;
  // True once a Sync() has read everything the source has (readiness).
  virtual bool synced() const = 0;
  // The source's section of `status` ("config": where it reads from).
  virtual nlohmann::json StatusJson() const = 0;
};

}  // namespace shunt::source
