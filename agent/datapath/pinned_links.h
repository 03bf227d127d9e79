// Programs attached through bpf_links pinned under the agent's bpffs
// directory (links/), so attachments outlive the agent process.
#pragma once

#include <bpf/libbpf.h>

#include <string>

#include "absl/status/status.h"
#include "agent/lib/pin_layout.h"

namespace shunt::datapath {

// Swaps `prog_fd` into the link pinned at `pin`; NotFound if there is none.
absl::Status UpdatePinnedLink(const std::string& pin, int prog_fd);
// Pins `link_fd` (taking ownership of the fd) at `pin`.
absl::Status PinNewLink(int link_fd, const std::string& pin);
// Attaches `prog_fd` to the cgroup through the link pinned as `link_name`,
// swapping the program into an existing link (restart, upgrade; *updated
// is set) or creating and pinning a new one.
absl::Status AttachCgroupLink(const lib::PinLayout& layout, const std::string& cgroup_root,
                              int prog_fd, bpf_attach_type type, const char* link_name,
                              bool* updated);
// Attaches a program libbpf attaches by its section name (the socket watch's
// raw tracepoints) and pins its link as `name`. Such links cannot take a new
// program (bpf_link_update), so a restart attaches anew and renames the new
// pin over the old one: both run for a moment, and the old link goes with
// its pin.
absl::Status AttachAndPin(const lib::PinLayout& layout, bpf_program* prog, const char* name);

}  // namespace shunt::datapath
