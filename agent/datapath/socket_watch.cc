#include "socket_watch.h"

#include <bpf/libbpf.h>

#include "agent/datapath/pinned_links.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"
#include "shunt/abi/pins.h"
#include "sock_watch.skel.h"
#include "sockopt.skel.h"

namespace shunt::datapath {

absl::StatusOr<std::unique_ptr<SocketWatch>> SocketWatch::Install(const lib::PinLayout& layout,
                                                                  const std::string& cgroup_root) {
  std::unique_ptr<SocketWatch> w(new SocketWatch());
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .pin_root_path = layout.dir().c_str());
  w->watch_ = sock_watch__open_opts(&open_opts);
  if (!w->watch_) return lib::ErrnoStatus(errno, "bpf: open sock_watch object");
  if (int err = sock_watch__load(w->watch_); err != 0)
    return lib::ErrnoStatus(-err, "bpf: load sock_watch object");
  w->sockopt_ = sockopt__open_opts(&open_opts);
  if (!w->sockopt_) return lib::ErrnoStatus(errno, "bpf: open sockopt object");
  if (int err = sockopt__load(w->sockopt_); err != 0)
    return lib::ErrnoStatus(-err, "bpf: load sockopt object");
  SHUNT_RETURN_IF_ERROR(
      AttachAndPin(layout, w->watch_->progs.shunt_watch_recv, SHUNT_LINK_WATCH_RECV));
  SHUNT_RETURN_IF_ERROR(
      AttachAndPin(layout, w->watch_->progs.shunt_watch_send, SHUNT_LINK_WATCH_SEND));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(layout, cgroup_root,
                                         bpf_program__fd(w->sockopt_->progs.shunt_setsockopt),
                                         BPF_CGROUP_SETSOCKOPT, SHUNT_LINK_SETSOCKOPT, nullptr));
  SHUNT_RETURN_IF_ERROR(AttachCgroupLink(layout, cgroup_root,
                                         bpf_program__fd(w->sockopt_->progs.shunt_getsockopt),
                                         BPF_CGROUP_GETSOCKOPT, SHUNT_LINK_GETSOCKOPT, nullptr));
  return w;
}

SocketWatch::~SocketWatch() {
  // Closes fds only: the pinned links stay.
  if (sockopt_) sockopt__destroy(sockopt_);
  if (watch_) sock_watch__destroy(watch_);
}

}  // namespace shunt::datapath
