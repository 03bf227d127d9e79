#include "file_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agent/source/yaml_json.h"
#include "yaml-cpp/eventhandler.h"

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

// One YAML document (or List item) as a store document.
model::Document ToDocument(const std::string& origin, const YAML::Node& node) {
  model::Document d{.where = {.file = origin, .line = node.Mark().line + 1}};
  auto json = YamlToJson(node);
  if (json.ok()) {
    d.doc = *std::move(json);
    return d;
  }
  // Name what can be told of the object, so its last good version stays.
  d.where.kind = ScalarOr(node, "kind");
  if (node.IsMap()) {
    d.where.name = ScalarOr(node["metadata"], "name");
    d.where.namespace_ = ScalarOr(node["metadata"], "namespace");
  }
  d.error = json.status();
  return d;
}

// yaml-cpp 0.7 can stop making progress on bad input and hand out the same
// empty document for ever: LoadAll("{\"\"},") allocates until the machine
// runs out of memory. A first pass that only notes where each document
// starts finds that before LoadAll runs: a document that starts where the
// one before it started is that loop.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck_ = any_ && mark.pos <= last_.pos;
    last_ = mark;
    any_ = true;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  bool stuck() const { return stuck_; }
  const YAML::Mark& last() const { return last_; }

 private:
  YAML::Mark last_;
  bool any_ = false, stuck_ = false;
};

// The line (0-based) where yaml-cpp stops making progress on `text`, if it
// does. Throws what yaml-cpp throws on a syntax error.
std::optional<int> StuckAt(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  while (parser.HandleNextDocument(starts))
    if (starts.stuck()) return starts.last().line;
  return std::nullopt;
}

}  // namespace

ManifestText ParseManifest(const std::string& origin, const std::string& text) {
  ManifestText out;
  std::vector<YAML::Node> docs;
  try {
    if (auto line = StuckAt(text)) {
      out.syntax_error =
          model::Problem{{.file = origin, .line = *line + 1},
                         "YAML syntax error: the parser makes no progress here (not valid YAML)"};
      return out;
    }
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp reports by exception; it stops here, at the component border.
    out.syntax_error = model::Problem{{.file = origin, .line = e.mark.line + 1},
                                      absl::StrCat("YAML syntax error: ", e.msg)};
    return out;
  }
  for (const YAML::Node& d : docs) {
    if (!d || d.IsNull()) continue;  // empty document between "---"
    // Unpack v1 List objects into their items.
    if (d.IsMap() && ScalarOr(d, "kind") == "List" && d["items"] && d["items"].IsSequence()) {
      for (const YAML::Node& item : d["items"]) out.docs.push_back(ToDocument(origin, item));
    } else {
      out.docs.push_back(ToDocument(origin, d));
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<FileSource>> FileSource::Create(const std::string& dir) {
  auto watcher = DirWatcher::Create(dir);
  if (!watcher.ok()) return watcher.status();
  auto s = std::make_unique<FileSource>(dir);
  s->watcher_.emplace(*std::move(watcher));
  return s;
}

nlohmann::json FileSource::StatusJson() const {
  return {{"source", name()}, {"config_dir", dir_}, {"synced", synced_}};
}

void FileSource::ReadFile(const std::string& path, const std::string& origin,
                          model::ObjectStore& store) {
  const bool had = parsed_.count(origin) > 0;
  std::ifstream in(path);
  if (!in) {
    store.KeepOrigin(origin, {{{.file = origin}, "cannot be read"}});
    return;
  }
  // At most one byte over the limit is read: enough to know it is over.
  // In pieces, as big as the file is: a buffer of the limit's size, zeroed
  // for every file read, cost each reconcile 32 MiB of page faults.
  std::string text;
  char piece[64 * 1024];
  while (text.size() <= max_file_bytes_) {
    const size_t want = std::min(sizeof(piece), max_file_bytes_ + 1 - text.size());
    in.read(piece, static_cast<std::streamsize>(want));
    const auto got = static_cast<size_t>(in.gcount());
    if (got == 0) break;
    text.append(piece, got);
  }
  if (text.size() > max_file_bytes_) {
    std::string reason = absl::StrCat("is larger than ", max_file_bytes_,
                                      " bytes, the most a manifest file may hold: not read");
    if (had) absl::StrAppend(&reason, "; keeping this file's last good objects");
    store.KeepOrigin(origin, {{{.file = origin}, std::move(reason)}});
    return;
  }
  ManifestText parsed = ParseManifest(origin, text);
  if (parsed.syntax_error) {
    if (had)
      absl::StrAppend(&parsed.syntax_error->reason, "; keeping this file's last good objects");
    store.KeepOrigin(origin, {*std::move(parsed.syntax_error)});
    return;
  }
  store.SetOrigin(origin, std::move(parsed.docs));
  parsed_.insert(origin);
}

absl::Status FileSource::Sync(model::ObjectStore& store) {
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  if (ec) {
    const std::string msg = absl::StrCat("config dir ", dir_, ": cannot be read: ", ec.message());
    if (ec == std::errc::permission_denied) return absl::PermissionDeniedError(msg);
    return absl::NotFoundError(msg);
  }
  std::set<std::string> present;
  for (const auto& e : it) {
    if (!IsManifestFile(e)) continue;
    const std::string path = e.path().string();
    const std::string origin = e.path().filename().string();
    present.insert(origin);
    struct stat st {};
    const bool have_stat = stat(path.c_str(), &st) == 0;
    const Seen now{
        .inode = st.st_ino,
        .size = static_cast<uint64_t>(st.st_size),
        .ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec};
    auto seen = seen_.find(origin);
    if (have_stat && seen != seen_.end() && seen->second.ctime_ns == now.ctime_ns &&
        seen->second.size == now.size && seen->second.inode == now.inode &&
        store.has_origin(origin))
      continue;  // unchanged since it was read
    ReadFile(path, origin, store);
    seen_[origin] = have_stat ? now : Seen{};  // without a stat, read it again next time
  }
  for (auto s = seen_.begin(); s != seen_.end();) {
    if (!present.count(s->first)) {
      store.RemoveOrigin(s->first);
      parsed_.erase(s->first);
      s = seen_.erase(s);
    } else {
      ++s;
    }
  }
  synced_ = true;
  return absl::OkStatus();
}

}  // namespace shunt::source
