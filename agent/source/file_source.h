// The embedded "file" source: a directory of Kubernetes objects as YAML or
// JSON (*.yaml, *.yml, *.json; several per file, "---"-separated; v1 List
// objects are unpacked), watched with inotify. Each file is one origin of
// the object store; a file is parsed again only when it changed, and YAML
// becomes JSON documents here, at the border (yaml_json.h). A file that
// stops parsing keeps all of its last good objects.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/source/dir_watcher.h"
#include "agent/source/source.h"

namespace shunt::source {

// One manifest file's text as store documents: YAML (JSON is YAML), several
// documents "---"-separated, empty ones skipped, v1 List objects unpacked
// into their items. A document that does not convert to JSON
// (YamlToJson's errors) is a Document with `error` set; text that is not
// YAML at all gives no documents and a `syntax_error` naming its line.
struct ManifestText {
  std::vector<model::Document> docs;
  std::optional<model::Problem> syntax_error;
};
ManifestText ParseManifest(const std::string& origin, const std::string& text);

class FileSource : public Source {
 public:
  // NotFound / PermissionDenied naming the directory when it cannot be watched.
  static absl::StatusOr<std::unique_ptr<FileSource>> Create(const std::string& dir);
  // Without inotify, for tests that call Sync() themselves.
  explicit FileSource(std::string dir) : dir_(std::move(dir)) {}

  std::string name() const override { return "file"; }
  int fd() const override { return watcher_ ? watcher_->fd() : -1; }
  bool Drain() override { return watcher_ && watcher_->Drain(); }
  // NotFound / PermissionDenied only when the directory itself is unreadable.
  absl::Status Sync(model::ObjectStore& store) override;
  bool synced() const override { return synced_; }
  nlohmann::json StatusJson() const override;

  const std::string& dir() const { return dir_; }

  // A manifest file larger than this is not read (a problem names it, and
  // its last good objects stay): one file cannot make the agent hold
  // gigabytes. The kube source bounds watch events the same way.
  static constexpr size_t kDefaultMaxFileBytes = 32u << 20;
  void set_max_file_bytes(size_t n) { max_file_bytes_ = n; }

 private:
  // What a file looked like when it was last read, so an unchanged file is
  // not read again (a large config re-reads in milliseconds when one file
  // changes).
  struct Seen {
    uint64_t inode = 0, size = 0;
    int64_t ctime_ns = -1;  // changes on every write and permission change
  };
  void ReadFile(const std::string& path, const std::string& origin, model::ObjectStore& store);

  std::string dir_;
  std::optional<DirWatcher> watcher_;
  std::map<std::string, Seen> seen_;  // by origin (file name)
  std::set<std::string> parsed_;      // files that parsed at least once

  bool synced_ = false;
  size_t max_file_bytes_ = kDefaultMaxFileBytes;
};

}  // namespace shunt::source
