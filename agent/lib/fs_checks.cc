#include "fs_checks.h"

#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"

namespace shunt::lib {
namespace {

absl::StatusOr<long> FsMagic(const std::string& path) {
  struct statfs st {};
  if (statfs(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("statfs ", path));
  return static_cast<long>(st.f_type);
}

}  // namespace

absl::StatusOr<std::vector<std::string>> PlanBpffsDir(const std::string& dir,
                                                      const PathProbe& probe) {
  constexpr absl::string_view kMountHint =
      "; mount one with `mount -t bpf bpf /sys/fs/bpf` and pass a directory below it";
  if (dir.empty()) return absl::FailedPreconditionError("bpffs: no directory given");
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();  // "a/b/" -> "a/b"
  std::vector<std::string> missing;                                  // innermost first
  for (;;) {
    const PathFacts f = probe(p.string());
    if (f.err == ENOENT || f.err == ENOTDIR) {
      missing.push_back(p.string());
      std::filesystem::path parent = p.parent_path();
      if (parent.empty()) parent = ".";
      if (parent == p) return ErrnoStatus(f.err, absl::StrCat("bpffs: stat ", p.string()));
      p = parent;
      continue;
    }
    if (f.err != 0) return ErrnoStatus(f.err, absl::StrCat("bpffs: stat ", p.string()));
    if (!f.is_dir) {
      return absl::FailedPreconditionError(absl::StrCat(
          "bpffs: ", p.string(), " is not a directory",
          missing.empty() ? "" : absl::StrCat(", so ", dir, " cannot be created below it")));
    }
    if (!f.on_bpffs) {
      if (missing.empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat("bpffs: ", dir, " is not on a BPF filesystem", kMountHint));
      }
      const std::string& top = missing.back();
      return absl::FailedPreconditionError(
          absl::StrCat("bpffs: ", top == missing.front() ? dir : absl::StrCat(dir, ": ", top),
                       " does not exist, and its parent ", p.string(),
                       " is not on a BPF filesystem", kMountHint));
    }
    break;
  }
  return std::vector<std::string>(missing.rbegin(), missing.rend());
}

PathFacts StatPath(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return {.err = errno};
  struct statfs fs {};
  if (statfs(path.c_str(), &fs) != 0) return {.err = errno};
  return {.is_dir = S_ISDIR(st.st_mode),
          .on_bpffs = fs.f_type == static_cast<decltype(fs.f_type)>(BPF_FS_MAGIC)};
}

absl::Status CheckBpffsDir(const std::string& dir) { return PlanBpffsDir(dir, StatPath).status(); }

absl::Status MakeBpffsDir(const std::string& dir) {
  SHUNT_ASSIGN_OR_RETURN(std::vector<std::string> plan, PlanBpffsDir(dir, StatPath));
  for (const std::string& d : plan) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoStatus(errno, absl::StrCat("bpffs: create ", d));
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
