#include "fs_checks.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::lib {
namespace {

absl::StatusOr<long> FsMagic(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("statfs ", path));
  return static_cast<long>(st.f_type);
}

}  // namespace

absl::Status CheckBpffsDir(const std::string& dir) {
  std::string probe = dir;
  if (!std::filesystem::exists(dir)) probe = std::filesystem::path(dir).parent_path().string();
  auto magic = FsMagic(probe);
  if (!magic.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("bpffs: ", dir, ": neither it nor its parent exists (",
                     magic.status().message(), "); mount one with `mount -t bpf bpf /sys/fs/bpf`"));
  }
  if (*magic != static_cast<long>(BPF_FS_MAGIC)) {
    return absl::FailedPreconditionError(
        absl::StrCat("bpffs: ", probe, " is not on a BPF filesystem; mount one with ",
                     "`mount -t bpf bpf /sys/fs/bpf` and pass a directory below it"));
  }
  return absl::OkStatus();
}

absl::Status CheckCgroup2Dir(const std::string& path) {
  auto magic = FsMagic(path);
  if (!magic.ok()) {
    return absl::NotFoundError(
        absl::StrCat("cgroup root: ", path, " does not exist (", magic.status().message(), ")"));
  }
  if (*magic != static_cast<long>(CGROUP2_SUPER_MAGIC)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cgroup root: ", path, " is not in a cgroup v2 hierarchy"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FindCgroup2Mount() {
  std::ifstream mounts("/proc/self/mounts");
  std::string line;
  while (std::getline(mounts, line)) {
    std::istringstream fields(line);
    std::string dev, dir, type;
    fields >> dev >> dir >> type;
    if (type == "cgroup2") return dir;
  }
  return absl::NotFoundError("cgroup: no cgroup2 mount in /proc/self/mounts");
}

}  // namespace shunt::lib
