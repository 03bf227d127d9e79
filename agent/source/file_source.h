// The embedded "file" source: a directory of Kubernetes YAML objects (one or
// several per file, "---"-separated; v1 List objects are unpacked). Each
// Load() re-reads the whole directory and yields the objects this version
// handles (Pods, the SMI access objects, Services, EndpointSlices and
// TrafficSplits), every rejected object with its reason, and a notice for
// each kind it skips and each object it does not load-balance (an IPv6
// EndpointSlice, an ExternalName Service). A rejected object keeps its last
// good version in force; a file that stops parsing keeps all of its last
// good objects.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/model/object_ref.h"
#include "agent/model/pod.h"
#include "agent/model/service.h"
#include "agent/model/smi.h"

namespace shunt::source {

struct Objects {
  std::vector<model::Pod> pods;
  std::vector<model::TrafficTarget> traffic_targets;
  std::vector<model::PortRoute> tcp_routes;
  std::vector<model::PortRoute> udp_routes;
  std::vector<model::HttpRouteGroup> http_route_groups;
  std::vector<model::Service> services;
  std::vector<model::EndpointSlice> endpoint_slices;
  // In a Snapshot, one split per root service: of several, the oldest
  // (creationTimestamp, then name) wins and the others are reported as
  // problems (SMI.md 7.10). A file keeps all of its splits, so the next one
  // takes over when the winner goes.
  std::vector<model::TrafficSplit> traffic_splits;
};

struct Snapshot : Objects {
  std::vector<model::Problem> problems;  // rejected: file, object, reason
  // Skipped kinds and objects this version does not load-balance (a kept
  // last-good version is a problem).
  std::vector<model::Problem> notices;
  int files = 0;
  int objects = 0;  // documents seen, valid or not
};

class FileSource {
 public:
  explicit FileSource(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }

  // NotFound / PermissionDenied only when the directory itself is unreadable;
  // problems with files and objects are in the snapshot.
  absl::StatusOr<Snapshot> Load();

 private:
  struct FileObjects : Objects {
    bool parsed = false;  // the file parsed at least once
    // What the file looked like when it was parsed, and what parsing said,
    // so an unchanged file is not parsed again (a large config re-reads in
    // milliseconds when one file changes).
    uint64_t inode = 0, size = 0;
    int64_t mtime_ns = -1;  // the inode change time (ctime), in ns
    std::vector<model::Problem> problems, notices;
    int objects = 0;
  };
  void LoadFile(const std::string& path, const std::string& display, Snapshot& snap,
                FileObjects& out);
  void KeepLastGood(const std::string& path, FileObjects& out) const;

  std::string dir_;
  // What each file contributed the last time it parsed, so a file that
  // becomes unreadable or invalid does not withdraw its objects.
  std::map<std::string, FileObjects> last_good_;
};

}  // namespace shunt::source
