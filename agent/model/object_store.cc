#include "object_store.h"

#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace shunt::model {
namespace {

// A pod's addresses: (its bytes, how the manifest spells it).
std::vector<std::pair<std::string, std::string>> AddressesOf(const Pod& pod) {
  std::vector<std::pair<std::string, std::string>> out;
  if (pod.ip_be != 0)
    out.emplace_back(std::string(reinterpret_cast<const char*>(&pod.ip_be), sizeof(pod.ip_be)),
                     absl::StrCat("status.podIP ", pod.ip));
  if (!pod.ip6.empty())
    out.emplace_back(std::string(reinterpret_cast<const char*>(pod.ip6_bytes.data()), 16),
                     absl::StrCat("status.podIPs ", pod.ip6));
  return out;
}

std::string StringAt(const nlohmann::json& doc, const char* a, const char* b = nullptr) {
  if (!doc.is_object()) return "";
  auto it = doc.find(a);
  if (it == doc.end()) return "";
  if (b != nullptr) {
    if (!it->is_object()) return "";
    auto jt = it->find(b);
    if (jt == it->end()) return "";
    it = jt;
  }
  return it->is_string() ? it->get<std::string>() : "";
}

// The namespace and name of a parsed object.
std::pair<std::string, std::string> NameOf(const Object& o) {
  return std::visit([](const auto& v) { return std::make_pair(v.namespace_, v.name); }, o);
}

// SMI leaves several TrafficSplits of one root open; Shunt's decision
// (SMI.md 7.10) is that the oldest wins: by creationTimestamp (a split
// without one counts as newer than any with one), then by name. The others
// leave the snapshot and are reported.
void OneSplitPerRoot(Snapshot& snap, const std::vector<ObjectRef>& refs) {
  auto older = [](const TrafficSplit& a, const TrafficSplit& b) {
    if (a.created.has_value() != b.created.has_value()) return a.created.has_value();
    if (a.created && *a.created != *b.created) return *a.created < *b.created;
    return a.name < b.name;
  };
  std::map<std::string, size_t> winner;  // root key -> index
  for (size_t i = 0; i < snap.traffic_splits.size(); ++i) {
    auto [it, inserted] = winner.emplace(snap.traffic_splits[i].RootKey(), i);
    if (!inserted && older(snap.traffic_splits[i], snap.traffic_splits[it->second])) it->second = i;
  }
  std::vector<TrafficSplit> kept;
  for (size_t i = 0; i < snap.traffic_splits.size(); ++i) {
    const TrafficSplit& t = snap.traffic_splits[i];
    const size_t w = winner.at(t.RootKey());
    if (w == i) {
      kept.push_back(t);
      continue;
    }
    snap.problems.push_back(
        {refs[i], absl::StrCat("root service '", t.service, "' is already split by ",
                               snap.traffic_splits[w].Key(), "; ignored")});
  }
  snap.traffic_splits = std::move(kept);
}

}  // namespace

ObjectStore::Entry ObjectStore::Parse(Document d, const std::vector<Entry>* previous) {
  Entry e{.ref = std::move(d.where)};
  const nlohmann::json& doc = d.doc;
  if (!d.error.ok()) {
    // The source could not turn it into a document; what it could tell of
    // its kind and name decides which last good version stays.
    e.spec = FindKind(e.ref.kind);
    if (e.spec != nullptr && e.ref.namespace_.empty()) e.ref.namespace_ = "default";
    std::string reason(d.error.message());
    KeepPrevious(e, previous, reason);
    return e;
  }
  if (!doc.is_object()) {
    e.problem = Problem{e.ref, "not a Kubernetes object (expected a mapping)"};
    return e;
  }
  e.ref.kind = StringAt(doc, "kind");
  e.ref.name = StringAt(doc, "metadata", "name");
  e.ref.namespace_ = StringAt(doc, "metadata", "namespace");
  const std::string api = StringAt(doc, "apiVersion");
  if (e.ref.kind.empty() || api.empty()) {
    e.problem = Problem{e.ref, api.empty() ? "apiVersion is missing" : "kind is missing"};
    return e;
  }
  const KindSpec* spec = FindKind(e.ref.kind);
  bool version_ok = false;
  if (spec != nullptr)
    for (std::string_view v : spec->versions) version_ok |= v == api;
  if (spec == nullptr || (spec->core && !version_ok)) {
    // Kinds we do not handle are reported as written.
    e.notice = Problem{e.ref, absl::StrCat("kind ", e.ref.kind, " (", api,
                                           ") is not handled by this version; skipped")};
    return e;
  }
  e.spec = spec;
  // The others live in a namespace, "default" when the manifest names none.
  if (e.ref.namespace_.empty()) e.ref.namespace_ = "default";
  std::string reason;
  if (!version_ok) {
    reason = absl::StrCat("apiVersion ", api, " of ", e.ref.kind, " is not supported (use ",
                          WantedVersions(*spec), ")");
  } else {
    absl::StatusOr<Object> parsed;
    try {
      parsed = spec->parse(doc, api);
    } catch (const std::exception& ex) {
      // The parsers do not throw; if one ever does, it is this object's
      // problem, not the agent's end.
      parsed = absl::InternalError(absl::StrCat("parser failed: ", ex.what()));
    }
    if (parsed.ok()) {
      e.object = *std::move(parsed);
      return e;
    }
    reason = std::string(parsed.status().message());
    if (parsed.status().code() == absl::StatusCode::kUnimplemented) {
      // Valid, but not something this version handles: that withdraws any
      // previous version.
      e.notice = Problem{e.ref, reason};
      return e;
    }
  }
  KeepPrevious(e, previous, reason);
  return e;
}

void ObjectStore::KeepPrevious(Entry& e, const std::vector<Entry>* previous, std::string reason) {
  if (previous != nullptr && e.spec != nullptr) {
    for (const Entry& p : *previous) {
      if (p.spec != e.spec || !p.object || p.ref.namespace_ != e.ref.namespace_ ||
          p.ref.name != e.ref.name)
        continue;
      e.object = p.object;
      absl::StrAppend(&reason, "; keeping its last good version");
      break;
    }
  }
  e.problem = Problem{e.ref, std::move(reason)};
}

void ObjectStore::SetOrigin(const std::string& origin, std::vector<Document> docs,
                            std::vector<Problem> problems) {
  Origin next{.problems = std::move(problems)};
  auto it = origins_.find(origin);
  const std::vector<Entry>* previous = it == origins_.end() ? nullptr : &it->second.entries;
  next.entries.reserve(docs.size());
  for (Document& d : docs) next.entries.push_back(Parse(std::move(d), nullptr));
  // A rejected object keeps its last good version, unless a valid copy of
  // it is in this version of the origin: that copy is in force, and the
  // rejected one would become its duplicate only because the origin was
  // read before (the same text must give the same objects and problems).
  std::set<std::tuple<const KindSpec*, std::string, std::string>> valid;
  for (const Entry& e : next.entries)
    if (e.object) valid.emplace(e.spec, e.ref.namespace_, e.ref.name);
  for (Entry& e : next.entries) {
    if (!e.problem || e.spec == nullptr || e.object ||
        valid.count({e.spec, e.ref.namespace_, e.ref.name}))
      continue;
    KeepPrevious(e, previous, std::move(e.problem->reason));
  }
  origins_[origin] = std::move(next);
  dirty_ = true;
}

void ObjectStore::KeepOrigin(const std::string& origin, std::vector<Problem> problems) {
  Origin& o = origins_[origin];
  std::vector<Entry> kept;
  for (Entry& e : o.entries) {
    if (!e.object) continue;
    e.problem.reset();
    e.notice.reset();
    kept.push_back(std::move(e));
  }
  o.entries = std::move(kept);
  o.problems = std::move(problems);
  dirty_ = true;
}

void ObjectStore::RemoveOrigin(const std::string& origin) {
  if (origins_.erase(origin) > 0) dirty_ = true;
}

void ObjectStore::Upsert(const std::string& origin, Document doc) {
  Origin& o = origins_[origin];
  Entry e = Parse(std::move(doc), &o.entries);
  dirty_ = true;
  for (Entry& old : o.entries) {
    if (old.ref.kind == e.ref.kind && old.ref.namespace_ == e.ref.namespace_ &&
        old.ref.name == e.ref.name) {
      old = std::move(e);
      return;
    }
  }
  o.entries.push_back(std::move(e));
}

void ObjectStore::Delete(const std::string& origin, const std::string& kind,
                         const std::string& namespace_, const std::string& name) {
  auto it = origins_.find(origin);
  if (it == origins_.end()) return;
  auto& entries = it->second.entries;
  for (auto e = entries.begin(); e != entries.end(); ++e) {
    if (e->ref.kind == kind && e->ref.namespace_ == namespace_ && e->ref.name == name) {
      entries.erase(e);
      dirty_ = true;
      return;
    }
  }
}

std::shared_ptr<const Snapshot> ObjectStore::Publish() {
  if (!dirty_) return current_;
  auto snap = std::make_shared<Snapshot>();
  snap->generation = ++generation_;
  std::map<std::string, std::string> first;  // kind/ns/name -> where it is defined
  const std::map<std::string, std::string> ip_owner = PodIpOwners();
  std::vector<ObjectRef> split_refs;  // the ref of each of snap->traffic_splits
  for (const auto& [name, origin] : origins_) {
    ++snap->origins;
    snap->problems.insert(snap->problems.end(), origin.problems.begin(), origin.problems.end());
    for (const Entry& e : origin.entries) {
      ++snap->documents;
      if (e.problem) snap->problems.push_back(*e.problem);
      if (e.notice) snap->notices.push_back(*e.notice);
    }
    // Duplicates are reported kind by kind, in the table's order.
    for (const KindSpec& spec : Kinds()) {
      for (const Entry& e : origin.entries) {
        if (e.spec != &spec || !e.object) continue;
        const auto [ns, obj_name] = NameOf(*e.object);
        const std::string key = absl::StrCat(ns, "/", obj_name);
        ObjectRef ref = e.ref;
        ref.namespace_ = ns;
        ref.name = obj_name;
        auto [dup, inserted] = first.emplace(absl::StrCat(std::string(spec.kind), "/", key),
                                             ref.file.empty() ? name : ref.file);
        if (!inserted) {
          snap->problems.push_back({ref, absl::StrCat("duplicate: ", std::string(spec.kind), " ",
                                                      key, " is already defined in ", dup->second,
                                                      "; this copy is ignored")});
          continue;
        }
        if (const Pod* pod = std::get_if<Pod>(&*e.object)) {
          std::string taken;
          for (const auto& [addr, text] : AddressesOf(*pod)) {
            auto owner = ip_owner.find(addr);
            if (owner != ip_owner.end() && owner->second != key) {
              taken = absl::StrCat(text, " is already an IP of Pod ", owner->second);
              break;
            }
          }
          if (!taken.empty()) {
            snap->problems.push_back({ref, absl::StrCat(taken, "; this pod is ignored")});
            continue;
          }
        }
        if (std::holds_alternative<TrafficSplit>(*e.object)) split_refs.push_back(ref);
        spec.add(*e.object, *snap);
      }
    }
  }
  OneSplitPerRoot(*snap, split_refs);
  current_ = std::move(snap);
  dirty_ = false;
  return current_;
}

std::map<std::string, std::string> ObjectStore::PodIpOwners() const {
  std::map<std::string, std::string> owner;
  std::set<std::string> local;  // IPs a pod on this node already holds
  for (const auto& [name, origin] : origins_) {
    for (const Entry& e : origin.entries) {
      const Pod* pod = e.object ? std::get_if<Pod>(&*e.object) : nullptr;
      if (!pod) continue;
      const bool is_local = !local_node_.empty() && pod->node_name == local_node_;
      for (const auto& [addr, text] : AddressesOf(*pod)) {
        auto [it, fresh] = owner.emplace(addr, pod->Key());
        if (!fresh && is_local && !local.count(addr)) it->second = pod->Key();
        if (is_local) local.insert(addr);
      }
    }
  }
  return owner;
}

}  // namespace shunt::model
