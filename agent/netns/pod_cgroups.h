// How a local pod is bound to its network namespace: by its kubelet cgroup,
// which only the kubelet names and fills, never by anything the pod itself
// can change (which namespace holds its IP, which link reports it).
//
// The kubelet puts every pod in a cgroup named after its UID:
//   cgroupfs driver: kubepods[/<qos>]/pod<UID>/
//   systemd driver:  kubepods.slice[/kubepods-<qos>.slice]/kubepods[-<qos>]-pod<UID_>.slice/
// (UID_ is the UID with '-' as '_'). Its oldest process is the sandbox's
// pause process, which holds the pod's network namespace for the pod's life;
// a container cannot make a process older than it, nor move it.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace shunt::netns {

// The pod cgroups under `root`, searched `max_depth` levels deep, by pod UID
// (with dashes). A test harness's `<root>/pod<UID>` and a node's
// `kubepods.slice/...` are both found.
std::map<std::string, std::string> FindPodCgroups(const std::string& root, int max_depth = 4);

// The UID a cgroup directory name stands for, or "" ("pod1a2b-...",
// "kubepods-besteffort-pod1a2b_....slice").
std::string PodUidOfCgroupName(const std::string& name);

// The oldest live process in `cgroup` or below it (containers are child
// cgroups), by start time. NotFound when there is none (a sandbox being
// created or torn down).
absl::StatusOr<pid_t> OldestProcessInCgroup(const std::string& cgroup,
                                            const std::string& proc_dir = "/proc");

}  // namespace shunt::netns
