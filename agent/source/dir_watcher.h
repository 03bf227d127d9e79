// inotify on the config directory: tells the agent loop that something
// changed, so it re-reads (debounced by the caller).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::source {

class DirWatcher {
 public:
  // NotFound if the directory does not exist.
  static absl::StatusOr<DirWatcher> Create(const std::string& dir);

  int fd() const { return fd_.get(); }
  // Reads all pending events; true if any could change the directory's content.
  bool Drain();

 private:
  explicit DirWatcher(lib::UniqueFd fd) : fd_(std::move(fd)) {}
  lib::UniqueFd fd_;
};

}  // namespace shunt::source
