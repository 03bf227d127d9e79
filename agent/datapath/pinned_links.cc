#include "pinned_links.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/status_macros.h"
#include "agent/lib/unique_fd.h"

namespace shunt::datapath {
namespace {

absl::StatusOr<uint64_t> CgroupId(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return lib::ErrnoStatus(errno, absl::StrCat("stat ", path));
  return static_cast<uint64_t>(st.st_ino);  // cgroup v2 ids are the directory inode numbers
}

}  // namespace

absl::Status UpdatePinnedLink(const std::string& pin, int prog_fd) {
  auto link = lib::OpenLinkPin(pin);
  if (!link.ok()) return link.status();
  if (bpf_link_update(link->get(), prog_fd, nullptr) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("bpf: update link ", pin));
  return absl::OkStatus();
}

absl::Status PinNewLink(int link_fd, const std::string& pin) {
  lib::UniqueFd owned(link_fd);
  if (bpf_obj_pin(link_fd, pin.c_str()) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat("bpf: pin link ", pin));
  return absl::OkStatus();
}

absl::Status AttachCgroupLink(const lib::PinLayout& layout, const std::string& cgroup_root,
                              int prog_fd, bpf_attach_type type, const char* link_name,
                              bool* updated) {
  const std::string pin = layout.Link(link_name);
  SHUNT_ASSIGN_OR_RETURN(uint64_t want_cg, CgroupId(cgroup_root));
  if (auto link = lib::OpenLinkPin(pin); link.ok()) {
    SHUNT_ASSIGN_OR_RETURN(lib::LinkFacts facts, lib::DescribeLink(link->get()));
    if (facts.target != want_cg) {
      return absl::FailedPreconditionError(absl::StrCat(
          "bpffs: ", layout.dir(), " already holds a ", link_name, " link for another cgroup (id ",
          facts.target, "); run `shunt-agent --uninstall --bpffs ", layout.dir(),
          "` first or pick another --bpffs"));
    }
    SHUNT_RETURN_IF_ERROR(UpdatePinnedLink(pin, prog_fd));
    if (updated) *updated = true;
    return absl::OkStatus();
  } else if (!absl::IsNotFound(link.status())) {
    return link.status();
  }
  lib::UniqueFd cg(open(cgroup_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cg.valid()) return lib::ErrnoStatus(errno, absl::StrCat("cgroup root: open ", cgroup_root));
  int link_fd = bpf_link_create(prog_fd, cg.get(), type, nullptr);
  if (link_fd < 0)
    return lib::ErrnoStatus(errno,
                            absl::StrCat("bpf: attach ", link_name, " to cgroup ", cgroup_root));
  return PinNewLink(link_fd, pin);
}

absl::Status AttachAndPin(const lib::PinLayout& layout, bpf_program* prog, const char* name) {
  bpf_link* link = bpf_program__attach(prog);
  if (!link)
    return lib::ErrnoStatus(errno, absl::StrCat("bpf: attach ", bpf_program__section_name(prog)));
  const std::string pin = layout.Link(name), tmp = pin + "-new";  // bpffs refuses dots in names
  unlink(tmp.c_str());
  absl::Status st = absl::OkStatus();
  if (int err = bpf_link__pin(link, tmp.c_str()); err != 0)
    st = lib::ErrnoStatus(-err, absl::StrCat("bpf: pin link ", tmp));
  else if (rename(tmp.c_str(), pin.c_str()) != 0)
    st = lib::ErrnoStatus(errno, absl::StrCat("bpf: rename ", tmp, " to ", pin));
  bpf_link__destroy(link);  // closes our fd: the pin holds the link now (or nothing, on error)
  return st;
}

}  // namespace shunt::datapath
