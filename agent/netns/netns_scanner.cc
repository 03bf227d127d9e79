#include "netns_scanner.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/unique_fd.h"
#include "agent/netns/link_info.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

namespace shunt::netns {
namespace {

void AddIfNew(const std::string& path, std::set<uint64_t>& seen, std::vector<NetnsHandle>& out) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return;
  if (seen.insert(st.st_ino).second) out.push_back({static_cast<uint64_t>(st.st_ino), path});
}

// Addresses of the calling thread's namespace, and for each one on a veth
// with its peer elsewhere, the peer's ifindex.
absl::Status CurrentIpv4Addrs(NetnsProbe& probe) {
  ifaddrs* ifa = nullptr;
  if (getifaddrs(&ifa) != 0) return lib::ErrnoStatus(errno, "getifaddrs");
  for (ifaddrs* i = ifa; i != nullptr; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (i->ifa_flags & IFF_LOOPBACK) continue;
    const uint32_t ip = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    probe.ipv4_be.push_back(ip);
    if (int idx = static_cast<int>(if_nametoindex(i->ifa_name)); idx > 0) {
      auto link = GetLink(idx);
      if (link.ok() && link->peer_in_other_ns && link->link > 0)
        probe.veth_peer_ifindex[ip] = link->link;
    }
  }
  freeifaddrs(ifa);
  return absl::OkStatus();
}

}  // namespace

std::vector<NetnsHandle> ListNetns(const std::string& run_netns_dir, const std::string& proc_dir) {
  std::set<uint64_t> seen;
  std::vector<NetnsHandle> out;
  if (DIR* d = opendir(run_netns_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      AddIfNew(absl::StrCat(run_netns_dir, "/", e->d_name), seen, out);
    }
    closedir(d);
  }
  if (DIR* d = opendir(proc_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      AddIfNew(absl::StrCat(proc_dir, "/", e->d_name, "/ns/net"), seen, out);
    }
    closedir(d);
  }
  return out;
}

absl::StatusOr<uint64_t> CurrentNetnsCookie() {
  lib::UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s.valid()) return lib::ErrnoStatus(errno, "netns: socket");
  uint64_t cookie = 0;
  socklen_t len = sizeof(cookie);
  if (getsockopt(s.get(), SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) != 0)
    return lib::ErrnoStatus(errno, "netns: getsockopt(SO_NETNS_COOKIE) (kernel >= 5.14 needed)");
  return cookie;
}

absl::StatusOr<std::vector<NetnsProbe>> ProbeNetns(const std::vector<NetnsHandle>& handles) {
  absl::StatusOr<std::vector<NetnsProbe>> result;
  // setns() changes only this thread's namespace; a fresh thread keeps the
  // agent's main thread where it is, whatever happens here.
  std::thread worker([&] {
    lib::UniqueFd home(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!home.valid()) {
      result = lib::ErrnoStatus(errno, "netns: open own namespace");
      return;
    }
    std::vector<NetnsProbe> probes;
    for (const NetnsHandle& h : handles) {
      lib::UniqueFd ns(open(h.path.c_str(), O_RDONLY | O_CLOEXEC));
      if (!ns.valid()) continue;  // gone since listing
      struct stat st {};
      if (fstat(ns.get(), &st) != 0 || st.st_ino != h.inode) continue;  // pid reused
      if (setns(ns.get(), CLONE_NEWNET) != 0) continue;
      auto cookie = CurrentNetnsCookie();
      NetnsProbe probe{.inode = h.inode, .path = h.path};
      absl::Status addrs = CurrentIpv4Addrs(probe);
      if (cookie.ok() && addrs.ok()) {
        probe.cookie = *cookie;
        probes.push_back(std::move(probe));
      }
      if (setns(home.get(), CLONE_NEWNET) != 0) {
        result = lib::ErrnoStatus(errno, "netns: return to own namespace");
        return;
      }
      if (!cookie.ok()) {
        result = cookie.status();
        return;
      }
    }
    result = std::move(probes);
  });
  worker.join();
  return result;
}

}  // namespace shunt::netns
