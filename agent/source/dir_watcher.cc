#include "dir_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::source {

absl::StatusOr<DirWatcher> DirWatcher::Create(const std::string& dir) {
  lib::UniqueFd fd(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "inotify_init1");
  const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                        IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF;
  if (inotify_add_watch(fd.get(), dir.c_str(), mask) < 0)
    return lib::ErrnoStatus(errno, absl::StrCat("config dir ", dir, ": watch"));
  return DirWatcher(std::move(fd));
}

bool DirWatcher::Drain() {
  alignas(inotify_event) char buf[16384];
  bool changed = false;
  for (;;) {
    ssize_t n = read(fd_.get(), buf, sizeof(buf));
    if (n <= 0) break;
    changed = true;
  }
  return changed;
}

}  // namespace shunt::source
