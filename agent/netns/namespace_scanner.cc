#include "namespace_scanner.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "agent/netns/pod_cgroups.h"

namespace shunt::netns {

std::map<std::string, pid_t> SystemNamespaceScanner::SandboxPids() {
  std::map<std::string, pid_t> out;
  for (const auto& [uid, cgroup] : FindPodCgroups(cgroup_root_)) {
    auto pid = OldestProcessInCgroup(cgroup, proc_dir_);
    out[uid] = pid.ok() ? *pid : 0;
  }
  return out;
}

absl::StatusOr<std::map<std::string, PodSandbox>> SystemNamespaceScanner::Sandboxes(
    const std::set<std::string>& uids) {
  std::map<std::string, PodSandbox> out;
  const std::map<std::string, std::string> cgroups = FindPodCgroups(cgroup_root_);
  std::vector<NetnsHandle> handles;
  std::map<uint64_t, std::vector<std::string>> by_inode;  // namespace -> pods in it
  for (const std::string& uid : uids) {
    PodSandbox& sb = out[uid];
    auto cg = cgroups.find(uid);
    if (cg == cgroups.end()) {
      sb.problem =
          absl::StrCat("no kubelet cgroup for uid ", uid, " under ", cgroup_root_, " (yet)");
      continue;
    }
    sb.cgroup = cg->second;
    auto pid = OldestProcessInCgroup(sb.cgroup, proc_dir_);
    if (!pid.ok()) {
      sb.problem = std::string(pid.status().message());
      continue;
    }
    sb.pid = *pid;
    const std::string path = absl::StrCat(proc_dir_, "/", *pid, "/ns/net");
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      sb.problem = absl::StrCat("its sandbox process ", *pid, " exited");
      continue;
    }
    if (by_inode[st.st_ino].empty()) handles.push_back({static_cast<uint64_t>(st.st_ino), path});
    by_inode[st.st_ino].push_back(uid);
  }
  auto probes = ProbeNetns(handles);
  if (!probes.ok()) return probes.status();
  std::map<uint64_t, const NetnsProbe*> probed;
  for (const NetnsProbe& p : *probes) probed[p.inode] = &p;
  for (const auto& [inode, pods] : by_inode) {
    auto p = probed.find(inode);
    std::vector<int> links;
    if (p != probed.end()) {
      auto l = LinksWithPeerIn(p->second->path);
      if (l.ok()) links = *std::move(l);
    }
    for (const std::string& uid : pods) {
      PodSandbox& sb = out[uid];
      if (p == probed.end()) {
        sb.problem = absl::StrCat("its sandbox process ", sb.pid, " exited");
        continue;
      }
      sb.netns = *p->second;
      sb.host_ifindexes = links;
    }
  }
  return out;
}

}  // namespace shunt::netns
