// Finds network namespaces on this kernel (named ones under /run/netns and
// every process's /proc/PID/ns/net) and probes each for its cookie and IPv4
// addresses, so pods can be matched to their namespace by address.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace shunt::netns {

struct NetnsHandle {
  uint64_t inode = 0;
  std::string path;  // an openable nsfs path for it
};

struct NetnsProbe {
  uint64_t inode = 0;
  std::string path;
  uint64_t cookie = 0;            // SO_NETNS_COOKIE, as bpf_get_netns_cookie sees it
  std::vector<uint32_t> ipv4_be;  // non-loopback addresses, network order
  // For each address on a veth whose peer is in another namespace: the
  // peer's ifindex (there), as the pod-side interface reports it.
  std::map<uint32_t, int> veth_peer_ifindex;
};

// Unique namespaces, by inode. `run_netns_dir` is normally /run/netns and
// `proc_dir` /proc; tests pass others.
std::vector<NetnsHandle> ListNetns(const std::string& run_netns_dir = "/run/netns",
                                   const std::string& proc_dir = "/proc");

// Enters each namespace on a helper thread (the caller's thread never changes
// namespace). A namespace that vanished meanwhile is left out.
absl::StatusOr<std::vector<NetnsProbe>> ProbeNetns(const std::vector<NetnsHandle>& handles);

// The cookie of the namespace the calling thread is in.
absl::StatusOr<uint64_t> CurrentNetnsCookie();

}  // namespace shunt::netns
