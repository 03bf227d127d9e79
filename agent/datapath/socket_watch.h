// The programs that keep the same-node short-circuit invisible to
// applications (bpf/lib/tcp_fallback.bpf.h has the model): the socket
// watch on the sock_recv_length and sock_send_length tracepoints, and a
// cgroup setsockopt hook. Without both the short-circuit is off.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/pin_layout.h"

struct sock_watch;  // libbpf skeletons
struct sockopt;

namespace shunt::datapath {

class SocketWatch {
 public:
  // Loads the objects against the pins in `layout` (the sockops object made
  // them) and attaches through pinned links, replacing a previous agent's.
  static absl::StatusOr<std::unique_ptr<SocketWatch>> Install(const lib::PinLayout& layout,
                                                              const std::string& cgroup_root);
  ~SocketWatch();

 private:
  SocketWatch() = default;
  ::sock_watch* watch_ = nullptr;
  ::sockopt* sockopt_ = nullptr;
};

}  // namespace shunt::datapath
