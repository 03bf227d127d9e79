#include "file_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shunt::source {
namespace fs = std::filesystem;
namespace {

bool IsManifestFile(const fs::directory_entry& e) {
  const std::string name = e.path().filename().string();
  if (name.empty() || name[0] == '.' || absl::EndsWith(name, "~")) return false;
  if (!e.is_regular_file()) return false;
  return absl::EndsWith(name, ".yaml") || absl::EndsWith(name, ".yml") ||
         absl::EndsWith(name, ".json");
}

std::string ScalarOr(const YAML::Node& n, const char* key) {
  if (!n || !n.IsMap()) return "";
  YAML::Node v = n[key];
  return v && v.IsScalar() ? v.Scalar() : "";
}

// The previous good object of this namespace/name, if the file had one.
template <typename T>
const T* Previous(const std::vector<T>& prev, const model::ObjectRef& ref) {
  for (const T& o : prev)
    if (o.namespace_ == ref.namespace_ && o.name == ref.name) return &o;
  return nullptr;
}

// Parses one object of a handled kind into `out`; on failure keeps the
// previous good version from `prev` (if any) and says so in the reason. An
// Unimplemented object (valid, but not something this version handles, such
// as an IPv6 EndpointSlice) is a notice and withdraws any previous version.
template <typename T>
void Accept(absl::StatusOr<T> parsed, std::vector<T>& out, const std::vector<T>* prev,
            const model::ObjectRef& ref, Snapshot& snap) {
  if (parsed.ok()) {
    out.push_back(*std::move(parsed));
    return;
  }
  std::string reason(parsed.status().message());
  if (parsed.status().code() == absl::StatusCode::kUnimplemented) {
    snap.notices.push_back({ref, reason});
    return;
  }
  if (prev != nullptr) {
    if (const T* p = Previous(*prev, ref)) {
      out.push_back(*p);
      absl::StrAppend(&reason, "; keeping its last good version");
    }
  }
  snap.problems.push_back({ref, reason});
}

// Runs a parser that may throw yaml-cpp exceptions (conversions on odd
// shapes) and turns them into InvalidArgument at this border.
template <typename F>
auto Guard(F&& parse) -> decltype(parse()) {
  try {
    return parse();
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
}

// SMI leaves several TrafficSplits of one root open; Shunt's decision
// (SMI.md 7.10) is that the oldest wins: by creationTimestamp (a split
// without one counts as newer than any with one), then by name. The others
// leave the snapshot and are reported.
void OneSplitPerRoot(Snapshot& snap, const std::vector<std::string>& files) {
  auto older = [](const model::TrafficSplit& a, const model::TrafficSplit& b) {
    if (a.created.has_value() != b.created.has_value()) return a.created.has_value();
    if (a.created && *a.created != *b.created) return *a.created < *b.created;
    return a.name < b.name;
  };
  std::map<std::string, size_t> winner;  // root key -> index
  for (size_t i = 0; i < snap.traffic_splits.size(); ++i) {
    auto [it, inserted] = winner.emplace(snap.traffic_splits[i].RootKey(), i);
    if (!inserted && older(snap.traffic_splits[i], snap.traffic_splits[it->second])) it->second = i;
  }
  std::vector<model::TrafficSplit> kept;
  for (size_t i = 0; i < snap.traffic_splits.size(); ++i) {
    const model::TrafficSplit& t = snap.traffic_splits[i];
    const size_t w = winner.at(t.RootKey());
    if (w == i) {
      kept.push_back(t);
      continue;
    }
    snap.problems.push_back(
        {{.file = files[i], .kind = "TrafficSplit", .namespace_ = t.namespace_, .name = t.name},
         absl::StrCat("root service '", t.service, "' is already split by ",
                      snap.traffic_splits[w].Key(), "; ignored")});
  }
  snap.traffic_splits = std::move(kept);
}

}  // namespace

void FileSource::KeepLastGood(const std::string& path, FileObjects& out) const {
  if (auto it = last_good_.find(path); it != last_good_.end()) out = it->second;
}

void FileSource::LoadFile(const std::string& path, const std::string& display, Snapshot& snap,
                          FileObjects& out) {
  std::ifstream in(path);
  if (!in) {
    snap.problems.push_back({{.file = display}, "cannot be read"});
    KeepLastGood(path, out);
    return;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text.str());
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports by exception; it stops here, at the component border.
    snap.problems.push_back({{.file = display, .line = e.mark.line + 1},
                             absl::StrCat("YAML syntax error: ", e.msg,
                                          last_good_.count(path)
                                              ? "; keeping this file's last good objects"
                                              : "")});
    KeepLastGood(path, out);
    return;
  }
  out.parsed = true;
  auto prev_it = last_good_.find(path);
  const FileObjects* prev = prev_it != last_good_.end() ? &prev_it->second : nullptr;

  // Unpack v1 List objects into their items.
  std::vector<YAML::Node> objects;
  for (const YAML::Node& d : docs) {
    if (!d || d.IsNull()) continue;  // empty document between "---"
    if (d.IsMap() && ScalarOr(d, "kind") == "List" && d["items"] && d["items"].IsSequence()) {
      for (const YAML::Node& item : d["items"]) objects.push_back(item);
    } else {
      objects.push_back(d);
    }
  }
  for (const YAML::Node& d : objects) {
    ++snap.objects;
    model::ObjectRef ref{.file = display, .line = d.Mark().line + 1};
    if (!d.IsMap()) {
      snap.problems.push_back({ref, "not a Kubernetes object (expected a mapping)"});
      continue;
    }
    ref.kind = ScalarOr(d, "kind");
    ref.name = ScalarOr(d["metadata"], "name");
    ref.namespace_ = ScalarOr(d["metadata"], "namespace");
    const std::string api = ScalarOr(d, "apiVersion");
    if (ref.kind.empty() || api.empty()) {
      snap.problems.push_back({ref, api.empty() ? "apiVersion is missing" : "kind is missing"});
      continue;
    }
    const std::string& k = ref.kind;
    // Kinds we do not handle are reported as written; the others live in a
    // namespace, "default" when the manifest names none.
    const bool handled = ((k == "Pod" || k == "Service") && api == "v1") || k == "TrafficTarget" ||
                         k == "TCPRoute" || k == "UDPRoute" || k == "HTTPRouteGroup" ||
                         k == "EndpointSlice" || k == "TrafficSplit";
    if (handled && ref.namespace_.empty()) ref.namespace_ = "default";
    // An object whose version we cannot read keeps its last good version.
    auto unsupported_version = [&](const char* want) {
      std::string reason = absl::StrCat("apiVersion ", api, " of ", k, " is not supported (use ", want, ")");
      bool kept = false;
      if (prev != nullptr) {
        if (k == "TrafficTarget") {
          if (const auto* p = Previous(prev->traffic_targets, ref)) out.traffic_targets.push_back(*p), kept = true;
        } else if (k == "TCPRoute") {
          if (const auto* p = Previous(prev->tcp_routes, ref)) out.tcp_routes.push_back(*p), kept = true;
        } else if (k == "UDPRoute") {
          if (const auto* p = Previous(prev->udp_routes, ref)) out.udp_routes.push_back(*p), kept = true;
        } else if (k == "HTTPRouteGroup") {
          if (const auto* p = Previous(prev->http_route_groups, ref)) out.http_route_groups.push_back(*p), kept = true;
        } else if (k == "EndpointSlice") {
          if (const auto* p = Previous(prev->endpoint_slices, ref))
            out.endpoint_slices.push_back(*p), kept = true;
        } else if (k == "TrafficSplit") {
          if (const auto* p = Previous(prev->traffic_splits, ref))
            out.traffic_splits.push_back(*p), kept = true;
        }
      }
      if (kept) absl::StrAppend(&reason, "; keeping its last good version");
      snap.problems.push_back({ref, reason});
    };
    if (k == "Pod" && api == "v1") {
      Accept(Guard([&] { return model::ParsePod(d); }), out.pods, prev ? &prev->pods : nullptr, ref, snap);
    } else if (k == "TrafficTarget") {
      if (api != "access.smi-spec.io/v1alpha3" && api != "access.smi-spec.io/v1alpha2") {
        unsupported_version("access.smi-spec.io/v1alpha3 or v1alpha2");
        continue;
      }
      Accept(Guard([&] { return model::ParseTrafficTarget(d, api); }), out.traffic_targets,
             prev ? &prev->traffic_targets : nullptr, ref, snap);
    } else if (k == "TCPRoute" || k == "UDPRoute" || k == "HTTPRouteGroup") {
      const bool v4 = api == "specs.smi-spec.io/v1alpha4";
      const bool v3 = api == "specs.smi-spec.io/v1alpha3";
      if (!(v4 || (v3 && k != "UDPRoute"))) {
        unsupported_version(k == "UDPRoute" ? "specs.smi-spec.io/v1alpha4"
                                            : "specs.smi-spec.io/v1alpha4 or v1alpha3");
        continue;
      }
      if (k == "HTTPRouteGroup") {
        Accept(Guard([&] { return model::ParseHttpRouteGroup(d); }), out.http_route_groups,
               prev ? &prev->http_route_groups : nullptr, ref, snap);
      } else {
        const bool tcp = k == "TCPRoute";
        Accept(Guard([&] {
                 return model::ParsePortRoute(d, tcp ? model::RouteKind::kTcp : model::RouteKind::kUdp);
               }),
               tcp ? out.tcp_routes : out.udp_routes,
               prev ? (tcp ? &prev->tcp_routes : &prev->udp_routes) : nullptr, ref, snap);
      }
    } else if (k == "Service" && api == "v1") {
      Accept(Guard([&] { return model::ParseService(d); }), out.services,
             prev ? &prev->services : nullptr, ref, snap);
    } else if (k == "EndpointSlice") {
      if (api != "discovery.k8s.io/v1") {
        unsupported_version("discovery.k8s.io/v1");
        continue;
      }
      Accept(Guard([&] { return model::ParseEndpointSlice(d); }), out.endpoint_slices,
             prev ? &prev->endpoint_slices : nullptr, ref, snap);
    } else if (k == "TrafficSplit") {
      if (api != "split.smi-spec.io/v1alpha4" && api != "split.smi-spec.io/v1alpha3" &&
          api != "split.smi-spec.io/v1alpha2" && api != "split.smi-spec.io/v1alpha1") {
        unsupported_version("split.smi-spec.io/v1alpha4, v1alpha3, v1alpha2 or v1alpha1");
        continue;
      }
      Accept(Guard([&] { return model::ParseTrafficSplit(d, api); }), out.traffic_splits,
             prev ? &prev->traffic_splits : nullptr, ref, snap);
    } else {
      snap.notices.push_back(
          {ref, absl::StrCat("kind ", k, " (", api, ") is not handled by this version; skipped")});
    }
  }
}

absl::StatusOr<Snapshot> FileSource::Load() {
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    const std::string msg = absl::StrCat("config dir ", dir_, ": cannot be read: ", ec.message());
    if (ec == std::errc::permission_denied) return absl::PermissionDeniedError(msg);
    return absl::NotFoundError(msg);
  }
  std::vector<fs::directory_entry> entries;
  for (const auto& e : it)
    if (IsManifestFile(e)) entries.push_back(e);
  std::sort(entries.begin(), entries.end());

  Snapshot snap;
  std::map<std::string, FileObjects> now_good;
  // Across files, the first definition of a name wins; later ones are rejected.
  std::map<std::string, std::string> origin;  // kind/ns/name -> file
  std::map<uint32_t, std::string> ip_owner;   // pod IP -> ns/name
  std::vector<std::string> split_file;        // the file of each of snap.traffic_splits
  auto first = [&](const std::string& kind, const std::string& key, const std::string& file,
                   const model::ObjectRef& ref) {
    auto [dup, inserted] = origin.emplace(kind + "/" + key, file);
    if (!inserted)
      snap.problems.push_back({ref, absl::StrCat("duplicate: ", kind, " ", key, " is already defined in ",
                                                 dup->second, "; this copy is ignored")});
    return inserted;
  };
  for (const auto& e : entries) {
    const std::string path = e.path().string();
    const std::string display = e.path().filename().string();
    ++snap.files;
    FileObjects objs;
    struct stat st {};
    const bool have_stat = stat(path.c_str(), &st) == 0;
    // ctime moves on every write and every permission change.
    const int64_t mtime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
    auto cached = last_good_.find(path);
    if (have_stat && cached != last_good_.end() && cached->second.mtime_ns == mtime_ns &&
        cached->second.size == static_cast<uint64_t>(st.st_size) && cached->second.inode == st.st_ino) {
      objs = cached->second;  // unchanged since it was parsed
    } else {
      Snapshot own;  // this file's problems and notices, kept with its objects
      LoadFile(path, display, own, objs);
      objs.problems = std::move(own.problems);
      objs.notices = std::move(own.notices);
      objs.objects = own.objects;
      if (have_stat && objs.parsed) {
        objs.inode = st.st_ino;
        objs.size = static_cast<uint64_t>(st.st_size);
        objs.mtime_ns = mtime_ns;
      } else {
        objs.mtime_ns = -1;  // never reuse a parse that failed
      }
    }
    snap.problems.insert(snap.problems.end(), objs.problems.begin(), objs.problems.end());
    snap.notices.insert(snap.notices.end(), objs.notices.begin(), objs.notices.end());
    snap.objects += objs.objects;
    for (const model::Pod& p : objs.pods) {
      model::ObjectRef ref{.file = display, .kind = "Pod", .namespace_ = p.namespace_, .name = p.name};
      if (!first("Pod", p.Key(), display, ref)) continue;
      if (auto [owner, inserted] = ip_owner.emplace(p.ip_be, p.Key()); !inserted) {
        snap.problems.push_back({ref, absl::StrCat("status.podIP ", p.ip, " is already the IP of Pod ",
                                                   owner->second, "; this pod is ignored")});
        continue;
      }
      snap.pods.push_back(p);
    }
    for (const auto& t : objs.traffic_targets)
      if (first("TrafficTarget", t.Key(), display,
                {.file = display, .kind = "TrafficTarget", .namespace_ = t.namespace_, .name = t.name}))
        snap.traffic_targets.push_back(t);
    for (const auto& r : objs.tcp_routes)
      if (first("TCPRoute", r.Key(), display,
                {.file = display, .kind = "TCPRoute", .namespace_ = r.namespace_, .name = r.name}))
        snap.tcp_routes.push_back(r);
    for (const auto& r : objs.udp_routes)
      if (first("UDPRoute", r.Key(), display,
                {.file = display, .kind = "UDPRoute", .namespace_ = r.namespace_, .name = r.name}))
        snap.udp_routes.push_back(r);
    for (const auto& g : objs.http_route_groups)
      if (first("HTTPRouteGroup", g.Key(), display,
                {.file = display, .kind = "HTTPRouteGroup", .namespace_ = g.namespace_, .name = g.name}))
        snap.http_route_groups.push_back(g);
    for (const auto& v : objs.services)
      if (first("Service", v.Key(), display,
                {.file = display, .kind = "Service", .namespace_ = v.namespace_, .name = v.name}))
        snap.services.push_back(v);
    for (const auto& e : objs.endpoint_slices)
      if (first("EndpointSlice", e.Key(), display,
                {.file = display,
                 .kind = "EndpointSlice",
                 .namespace_ = e.namespace_,
                 .name = e.name}))
        snap.endpoint_slices.push_back(e);
    for (const auto& t : objs.traffic_splits)
      if (first("TrafficSplit", t.Key(), display,
                {.file = display,
                 .kind = "TrafficSplit",
                 .namespace_ = t.namespace_,
                 .name = t.name})) {
        snap.traffic_splits.push_back(t);
        split_file.push_back(display);
      }
    // Only a file that parsed (now or before) has objects worth remembering.
    if (objs.parsed) now_good[path] = std::move(objs);
  }
  last_good_ = std::move(now_good);
  OneSplitPerRoot(snap, split_file);
  return snap;
}

}  // namespace shunt::source
