#include "tc_attacher.h"

#include <bpf/bpf.h>
#include <net/if.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/lib/bpf_introspect.h"
#include "agent/lib/pinned_maps.h"
#include "agent/lib/unique_fd.h"
#include "shunt/abi/pins.h"

namespace shunt::datapath {
namespace {

constexpr int kTcxIngress = 46;  // BPF_TCX_INGRESS (uapi >= 6.6; Debian's headers are older)
constexpr int kTcxEgress = 47;

struct Direction {
  const char* suffix;
  int attach_type;
};
// Seen from the node: packets from the pod arrive (ingress), packets to the
// pod leave (egress).
constexpr Direction kDirections[] = {{"from-pod", kTcxIngress}, {"to-pod", kTcxEgress}};

}  // namespace

bool TcxLinksSupported() {
  // r0 = TCX_NEXT (-1): pass the packet on as if no program were attached.
  const bpf_insn insns[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = -1},
      {.code = BPF_JMP | BPF_EXIT},
  };
  lib::UniqueFd prog(bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "shunt_tcx_probe", "GPL", insns,
                                   std::size(insns), nullptr));
  if (!prog.valid()) return false;
  const unsigned lo = if_nametoindex("lo");
  if (lo == 0) return false;
  lib::UniqueFd link(bpf_link_create(prog.get(), static_cast<int>(lo),
                                     static_cast<bpf_attach_type>(kTcxIngress), nullptr));
  return link.valid();
}

std::string TcAttacher::Dir() const {
  return absl::StrCat(layout_.LinkDir(), "/", SHUNT_LINK_TC_DIR);
}

TcSyncReport TcAttacher::Sync(const std::set<int>& ifindexes) {
  TcSyncReport r;
  mkdir(Dir().c_str(), 0700);
  std::set<std::string> wanted;
  for (int ifindex : ifindexes) {
    for (const Direction& d : kDirections) {
      const std::string name = absl::StrCat(ifindex, "-", d.suffix);
      const std::string pin = absl::StrCat(Dir(), "/", name);
      const int prog = d.attach_type == kTcxIngress ? from_pod_fd_ : to_pod_fd_;
      wanted.insert(name);
      if (auto link = lib::OpenLinkPin(pin); link.ok()) {
        auto facts = lib::DescribeLink(link->get());
        if (facts.ok() && facts->target == static_cast<uint64_t>(ifindex)) {
          if (!refreshed_.count(name)) {
            if (bpf_link_update(link->get(), prog, nullptr) != 0) {
              r.errors.push_back(absl::StrCat("tc: update ", pin, ": ", strerror(errno)));
              continue;
            }
            refreshed_.insert(name);
            ++r.updated;
          }
          continue;
        }
        // The interface of that index is gone (or was replaced): start over.
        bpf_link_detach(link->get());
        unlink(pin.c_str());
      }
      int fd = bpf_link_create(prog, ifindex, static_cast<bpf_attach_type>(d.attach_type), nullptr);
      if (fd < 0) {
        r.errors.push_back(absl::StrCat("tc: attach ", d.suffix, " to ifindex ", ifindex, ": ",
                                        strerror(errno),
                                        errno == EINVAL ? " (tcx needs Linux >= 6.6)" : ""));
        continue;
      }
      lib::UniqueFd owned(fd);
      if (bpf_obj_pin(fd, pin.c_str()) != 0) {
        r.errors.push_back(absl::StrCat("tc: pin ", pin, ": ", strerror(errno)));
        continue;
      }
      refreshed_.insert(name);
      ++r.attached;
    }
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(Dir(), ec)) {
    const std::string name = e.path().filename().string();
    if (wanted.count(name)) continue;
    if (auto link = lib::OpenLinkPin(e.path().string()); link.ok()) bpf_link_detach(link->get());
    unlink(e.path().c_str());
    refreshed_.erase(name);
    ++r.detached;
  }
  return r;
}

}  // namespace shunt::datapath
