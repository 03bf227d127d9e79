#include "uninstall.h"

#include <bpf/bpf.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "shunt/abi/pins.h"

namespace shunt::datapath {

namespace fs = std::filesystem;

namespace {

// Removes the empty directories above `dir` on the same BPF filesystem,
// innermost first, up to its mount point (excluded): the agent creates
// missing parents of --bpffs (lib::MakeBpffsDir), so uninstall removes them
// again. A directory that still holds anything is someone else's and stops
// the walk.
std::vector<std::string> RemoveEmptyParents(const std::string& dir) {
  std::vector<std::string> removed;
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();  // "a/b/" -> "a/b"
  for (p = p.parent_path(); p.has_relative_path(); p = p.parent_path()) {
    struct statfs sfs {};
    if (statfs(p.c_str(), &sfs) != 0 ||
        sfs.f_type != static_cast<decltype(sfs.f_type)>(BPF_FS_MAGIC))
      break;
    struct stat self {};
    struct stat up {};
    if (stat(p.c_str(), &self) != 0 || stat(p.parent_path().c_str(), &up) != 0 ||
        self.st_dev != up.st_dev)
      break;  // p is the mount point
    if (rmdir(p.c_str()) != 0) break;
    removed.push_back(p.string());
  }
  return removed;
}

}  // namespace

absl::StatusOr<std::string> Uninstall(const std::string& bpffs_dir) {
  const lib::PinLayout layout(bpffs_dir);
  if (access(bpffs_dir.c_str(), F_OK) != 0)
    return absl::StrCat("nothing to uninstall: ", bpffs_dir, " does not exist");
  std::vector<std::string> done, errors;
  for (const std::string& name : lib::PinnedLinkList()) {
    const std::string pin = layout.Link(name);
    auto link = lib::OpenLinkPin(pin);
    if (absl::IsNotFound(link.status())) continue;
    if (!link.ok()) return link.status();
    // Detach now, not when the last reference goes: another process may hold one.
    if (bpf_link_detach(link->get()) != 0 && errno != EOPNOTSUPP && errno != EINVAL)
      errors.push_back(absl::StrCat("detach ", pin, ": ", strerror(errno)));
    if (unlink(pin.c_str()) != 0)
      errors.push_back(absl::StrCat("unpin ", pin, ": ", strerror(errno)));
    else
      done.push_back(absl::StrCat("link ", name));
  }
  // This version's maps, then those of earlier layouts an upgrade left.
  auto unpin_map = [&](const std::string& name, const char* note) {
    const std::string pin = layout.Map(name);
    if (unlink(pin.c_str()) == 0)
      done.push_back(absl::StrCat("map ", name, note));
    else if (errno != ENOENT)
      errors.push_back(absl::StrCat("unpin ", pin, ": ", strerror(errno)));
  };
  for (const lib::MapDescription& m : lib::PinnedMapList()) unpin_map(m.pin_name, "");
  for (const std::string& name : lib::RetiredMapList()) unpin_map(name, " (an earlier layout)");
  // Per-interface TC links live one level down.
  const std::string tc_dir = absl::StrCat(layout.LinkDir(), "/", SHUNT_LINK_TC_DIR);
  std::error_code tc_ec;
  for (const auto& e : fs::directory_iterator(tc_dir, tc_ec)) {
    auto link = lib::OpenLinkPin(e.path().string());
    if (link.ok()) bpf_link_detach(link->get());
    if (unlink(e.path().c_str()) == 0)
      done.push_back(absl::StrCat("link tc/", e.path().filename().string()));
    else
      errors.push_back(absl::StrCat("unpin ", e.path().string(), ": ", strerror(errno)));
  }
  rmdir(tc_dir.c_str());
  rmdir(layout.LinkDir().c_str());
  std::vector<std::string> left, parents;
  std::error_code ec;
  if (fs::exists(bpffs_dir, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(bpffs_dir, ec))
      left.push_back(e.path().string());
    if (left.empty() && rmdir(bpffs_dir.c_str()) == 0) parents = RemoveEmptyParents(bpffs_dir);
  }
  if (!errors.empty())
    return absl::InternalError(absl::StrCat("uninstall: ", absl::StrJoin(errors, "; ")));
  std::string msg = done.empty() ? absl::StrCat("nothing to uninstall in ", bpffs_dir)
                                 : absl::StrCat("removed ", done.size(), " pins from ", bpffs_dir,
                                                ": ", absl::StrJoin(done, ", "));
  if (!parents.empty())
    absl::StrAppend(&msg, "; removed empty parent directories ", absl::StrJoin(parents, ", "));
  if (!left.empty()) absl::StrAppend(&msg, "; left alone (not ours): ", absl::StrJoin(left, ", "));
  return msg;
}

}  // namespace shunt::datapath
