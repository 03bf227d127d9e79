// The object store: sources hand it documents, it hands controllers
// snapshots. It owns every rule about which objects are in force, whatever
// the source:
//  * each document is parsed by its kind (kinds.h); an invalid object keeps
//    the last good version its origin had of it, and says so;
//  * the first definition of a kind/namespace/name wins (origins in name
//    order, then document order); later copies are reported;
//  * a pod IP belongs to the first pod that claims it;
//  * one TrafficSplit per root service: the oldest (SMI.md 7.10).
// An origin is what a source delivers as one unit: a file for the file
// source, a resource list for the API-server source.
//
// Not thread-safe: the agent's loop owns it.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/model/kinds.h"
#include "agent/model/objects.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

// One document as a source read it.
struct Document {
  // File and line where the source has them; kind, namespace and name are
  // filled in from the document.
  ObjectRef where;
  nlohmann::json doc;
  // Not OK when the source could not turn the object into a document (such
  // as a value that is not UTF-8): the object is rejected with this reason,
  // and `where` names what the source could tell of its kind and name.
  absl::Status error;
};

class ObjectStore {
 public:
  // Replaces everything `origin` contributed with `docs` (kept in this
  // order). `problems` are the origin's own, such as a document that could
  // not be read at all.
  void SetOrigin(const std::string& origin, std::vector<Document> docs,
                 std::vector<Problem> problems = {});
  // `origin` could not be read this time: all of its last good objects stay
  // in force, and `problems` say why.
  void KeepOrigin(const std::string& origin, std::vector<Problem> problems);
  void RemoveOrigin(const std::string& origin);
  // One object added or changed within an origin (a watch event).
  void Upsert(const std::string& origin, Document doc);
  // One object gone from an origin.
  void Delete(const std::string& origin, const std::string& kind, const std::string& namespace_,
              const std::string& name);

  // This node's name. Two pods claiming one status.podIP: a pod on this node
  // keeps it (the agent checks a local pod's address in its own network
  // namespace, and a remote object must not take a local pod's identity),
  // else the first one seen; the other is reported and ignored.
  void SetLocalNode(std::string node) {
    local_node_ = std::move(node);
    dirty_ = true;
  }

  bool has_origin(const std::string& origin) const { return origins_.count(origin) > 0; }
  // True when something changed since the last Publish().
  bool dirty() const { return dirty_; }
  // The objects in force now, with the next generation number when anything
  // changed since the last call; otherwise the same snapshot again.
  std::shared_ptr<const Snapshot> Publish();
  // The last published snapshot (generation 0 and empty before the first).
  const std::shared_ptr<const Snapshot>& current() const { return current_; }

 private:
  struct Entry {
    ObjectRef ref;
    const KindSpec* spec = nullptr;  // nullptr: not an object this version handles
    std::optional<Object> object;    // parsed now, or the last good version
    std::optional<Problem> problem;  // rejected (the object may be a kept last good one)
    std::optional<Problem> notice;   // skipped
  };
  struct Origin {
    std::vector<Entry> entries;     // document order
    std::vector<Problem> problems;  // about the origin itself
  };
  // Parses one document; `previous` is the origin's entries before the
  // change, where a last good version is looked up.
  static Entry Parse(Document doc, const std::vector<Entry>* previous);
  // Rejects `e` with `reason`, keeping the previous good version of the
  // same kind/namespace/name if there is one.
  static void KeepPrevious(Entry& e, const std::vector<Entry>* previous, std::string reason);

  // Each pod address (status.podIP, the IPv6 one of status.podIPs; keyed by
  // its 4 or 16 bytes) -> the pod keeping it (SetLocalNode).
  std::map<std::string, std::string> PodIpOwners() const;

  std::map<std::string, Origin> origins_;
  std::string local_node_;
  bool dirty_ = true;
  uint64_t generation_ = 0;
  std::shared_ptr<const Snapshot> current_ = std::make_shared<const Snapshot>();
};

}  // namespace shunt::model
