#include "bpf_introspect.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>

#include <cstring>
#include <vector>

#include "agent/lib/errno_status.h"

namespace shunt::lib {
namespace {

// Mirrors the kernel's bpf_link_info for the two link kinds we create; the
// sockmap member only exists in uapi headers from 6.10, newer than Debian's.
struct LinkInfoRaw {
  uint32_t type, id, prog_id, pad;
  union {
    struct {
      uint64_t cgroup_id;
      uint32_t attach_type;
    } cgroup;
    struct {
      uint32_t map_id;
      uint32_t attach_type;
    } sockmap;
    struct {
      uint32_t ifindex;
      uint32_t attach_type;
    } tcx;
    uint8_t room[128];
  };
};
constexpr uint32_t kLinkTypeCgroup = 3;
constexpr uint32_t kLinkTypeTcx = 11;
constexpr uint32_t kLinkTypeSockmap = 14;

std::string AttachTypeName(uint32_t t) {
  const char* n = libbpf_bpf_attach_type_str(static_cast<bpf_attach_type>(t));
  return n ? n : std::to_string(t);
}

}  // namespace

absl::StatusOr<MapFacts> DescribeMap(int fd) {
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return ErrnoStatus(errno, "bpf: map info");
  MapFacts f;
  f.id = info.id;
  const char* t = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(info.type));
  f.type = t ? t : std::to_string(info.type);
  f.key_size = info.key_size;
  f.value_size = info.value_size;
  f.max_entries = info.max_entries;
  if (info.type == BPF_MAP_TYPE_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_ARRAY) {
    f.entries = info.max_entries;
    return f;
  }
  std::vector<uint8_t> cur(info.key_size), next(info.key_size);
  const void* prev = nullptr;
  for (uint64_t guard = 0; guard < (1ull << 24); ++guard) {
    if (bpf_map_get_next_key(fd, prev, next.data()) != 0) break;
    ++f.entries;
    cur.swap(next);
    prev = cur.data();
  }
  return f;
}

absl::StatusOr<LinkFacts> DescribeLink(int fd) {
  LinkInfoRaw info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0) return ErrnoStatus(errno, "bpf: link info");
  LinkFacts f;
  f.id = info.id;
  f.prog_id = info.prog_id;
  if (info.type == kLinkTypeCgroup) {
    f.type = "cgroup";
    f.attach_type = AttachTypeName(info.cgroup.attach_type);
    f.target = info.cgroup.cgroup_id;
  } else if (info.type == kLinkTypeTcx) {
    f.type = "tcx";
    f.attach_type = info.tcx.attach_type == 46   ? "tcx_ingress"
                    : info.tcx.attach_type == 47 ? "tcx_egress"
                                                 : AttachTypeName(info.tcx.attach_type);
    f.target = info.tcx.ifindex;  // 0 once the interface is gone
  } else if (info.type == kLinkTypeSockmap) {
    f.type = "sockmap";
    f.attach_type = AttachTypeName(info.sockmap.attach_type);
    f.target = info.sockmap.map_id;
  } else {
    const char* t = libbpf_bpf_link_type_str(static_cast<bpf_link_type>(info.type));
    f.type = t ? t : std::to_string(info.type);
  }
  int prog_fd = bpf_prog_get_fd_by_id(info.prog_id);
  if (prog_fd >= 0) {
    bpf_prog_info pinfo{};
    uint32_t plen = sizeof(pinfo);
    if (bpf_obj_get_info_by_fd(prog_fd, &pinfo, &plen) == 0) f.prog_name = pinfo.name;
    close(prog_fd);
  }
  return f;
}

}  // namespace shunt::lib
