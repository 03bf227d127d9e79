#include "file_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
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

}  // namespace

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
  const FileObjects* previous = prev_it != last_good_.end() ? &prev_it->second : nullptr;
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
    if (ref.kind != "Pod" || api != "v1") {
      snap.notices.push_back(
          {ref, absl::StrCat("kind ", ref.kind, " (", api, ") is not handled by this version; skipped")});
      continue;
    }
    if (ref.namespace_.empty()) ref.namespace_ = "default";
    absl::StatusOr<model::Pod> pod;
    try {
      pod = model::ParsePod(d);
    } catch (const YAML::Exception& e) {
      pod = absl::InvalidArgumentError(e.what());
    }
    if (pod.ok()) {
      out.pods.push_back(*std::move(pod));
      continue;
    }
    std::string reason(pod.status().message());
    if (previous != nullptr) {
      auto it = std::find_if(previous->pods.begin(), previous->pods.end(), [&](const model::Pod& p) {
        return p.name == ref.name && p.namespace_ == ref.namespace_;
      });
      if (it != previous->pods.end()) {
        out.pods.push_back(*it);
        absl::StrAppend(&reason, "; keeping its last good version");
      }
    }
    snap.problems.push_back({ref, reason});
  }
}

void FileSource::KeepLastGood(const std::string& path, FileObjects& out) const {
  if (auto it = last_good_.find(path); it != last_good_.end()) out = it->second;
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
  std::map<std::string, std::string> pod_origin;  // ns/name -> file
  std::map<uint32_t, std::string> ip_owner;       // ip -> ns/name
  for (const auto& e : entries) {
    const std::string path = e.path().string();
    const std::string display = e.path().filename().string();
    ++snap.files;
    FileObjects objs;
    LoadFile(path, display, snap, objs);
    for (model::Pod& p : objs.pods) {
      model::ObjectRef ref{.file = display, .kind = "Pod", .namespace_ = p.namespace_, .name = p.name};
      if (auto [dup, inserted] = pod_origin.emplace(p.Key(), display); !inserted) {
        snap.problems.push_back({ref, absl::StrCat("duplicate: Pod ", p.Key(), " is already defined in ",
                                                   dup->second, "; this copy is ignored")});
        continue;
      }
      if (auto [owner, inserted] = ip_owner.emplace(p.ip_be, p.Key()); !inserted) {
        snap.problems.push_back({ref, absl::StrCat("status.podIP ", p.ip, " is already the IP of Pod ",
                                                   owner->second, "; this pod is ignored")});
        continue;
      }
      snap.pods.push_back(p);
    }
    // Only a file that parsed (now or before) has objects worth remembering.
    if (objs.parsed) now_good[path] = std::move(objs);
  }
  last_good_ = std::move(now_good);
  return snap;
}

}  // namespace shunt::source
