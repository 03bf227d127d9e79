#include "link_info.h"

#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/unique_fd.h"

namespace shunt::netns {

absl::StatusOr<LinkInfo> GetLink(int ifindex) {
  lib::UniqueFd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s.valid()) return lib::ErrnoStatus(errno, "netlink: socket");
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ifi.ifi_family = AF_UNSPEC;
  req.ifi.ifi_index = ifindex;
  if (send(s.get(), &req, req.nh.nlmsg_len, 0) < 0) return lib::ErrnoStatus(errno, "netlink: send");
  alignas(nlmsghdr) char buf[16384];
  ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
  if (n < 0) return lib::ErrnoStatus(errno, "netlink: recv");
  for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<size_t>(n));
       nh = NLMSG_NEXT(nh, n)) {
    if (nh->nlmsg_type == NLMSG_ERROR) {
      const auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
      if (err->error == -ENODEV) return absl::NotFoundError(absl::StrCat("no interface ", ifindex));
      return lib::ErrnoStatus(err->error, absl::StrCat("netlink: get link ", ifindex));
    }
    if (nh->nlmsg_type != RTM_NEWLINK) continue;
    const auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
    LinkInfo info;
    info.ifindex = ifi->ifi_index;
    int len = static_cast<int>(IFLA_PAYLOAD(nh));
    for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == IFLA_IFNAME)
        info.name = static_cast<const char*>(RTA_DATA(a));
      else if (a->rta_type == IFLA_LINK)
        std::memcpy(&info.link, RTA_DATA(a), sizeof(int));
      else if (a->rta_type == IFLA_LINK_NETNSID)
        info.peer_in_other_ns = true;
    }
    return info;
  }
  return absl::NotFoundError(absl::StrCat("no interface ", ifindex));
}

namespace {

// The id this namespace knows `netns_fd` by (RTM_GETNSID), -1 for none.
absl::StatusOr<int> NetnsId(int netlink, int netns_fd) {
  struct {
    nlmsghdr nh;
    rtgenmsg g;
    char pad[3];
    rtattr fd_attr;
    uint32_t fd;
  } req{};
  req.nh.nlmsg_len = sizeof(req);
  req.nh.nlmsg_type = RTM_GETNSID;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.g.rtgen_family = AF_UNSPEC;
  req.fd_attr.rta_type = NETNSA_FD;
  req.fd_attr.rta_len = RTA_LENGTH(sizeof(uint32_t));
  req.fd = static_cast<uint32_t>(netns_fd);
  if (send(netlink, &req, sizeof(req), 0) < 0) return lib::ErrnoStatus(errno, "netlink: send");
  alignas(nlmsghdr) char buf[4096];
  ssize_t n = recv(netlink, buf, sizeof(buf), 0);
  if (n < 0) return lib::ErrnoStatus(errno, "netlink: recv");
  for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<size_t>(n));
       nh = NLMSG_NEXT(nh, n)) {
    if (nh->nlmsg_type == NLMSG_ERROR) {
      const auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
      return lib::ErrnoStatus(-err->error, "netlink: get nsid");
    }
    if (nh->nlmsg_type != RTM_NEWNSID) continue;
    int len = static_cast<int>(NLMSG_PAYLOAD(nh, sizeof(rtgenmsg)));
    auto* a = reinterpret_cast<rtattr*>(static_cast<char*>(NLMSG_DATA(nh)) +
                                        NLMSG_ALIGN(sizeof(rtgenmsg)));
    for (; RTA_OK(a, len); a = RTA_NEXT(a, len)) {
      if (a->rta_type == NETNSA_NSID) {
        int id = -1;
        std::memcpy(&id, RTA_DATA(a), sizeof(int));
        return id;
      }
    }
  }
  return -1;
}

}  // namespace

absl::StatusOr<std::vector<int>> LinksWithPeerIn(const std::string& netns_path) {
  lib::UniqueFd ns(open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return lib::ErrnoStatus(errno, absl::StrCat("open ", netns_path));
  lib::UniqueFd s(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!s.valid()) return lib::ErrnoStatus(errno, "netlink: socket");
  auto id = NetnsId(s.get(), ns.get());
  if (!id.ok()) return id.status();
  std::vector<int> out;
  if (*id < 0) return out;
  struct {
    nlmsghdr nh;
    ifinfomsg ifi;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifinfomsg));
  req.nh.nlmsg_type = RTM_GETLINK;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = 2;
  req.ifi.ifi_family = AF_UNSPEC;
  if (send(s.get(), &req, req.nh.nlmsg_len, 0) < 0) return lib::ErrnoStatus(errno, "netlink: send");
  alignas(nlmsghdr) static thread_local char buf[65536];
  for (;;) {
    ssize_t n = recv(s.get(), buf, sizeof(buf), 0);
    if (n < 0) return lib::ErrnoStatus(errno, "netlink: recv");
    for (auto* nh = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(nh, static_cast<size_t>(n));
         nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_type == NLMSG_DONE) return out;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = static_cast<nlmsgerr*>(NLMSG_DATA(nh));
        return lib::ErrnoStatus(-err->error, "netlink: dump links");
      }
      if (nh->nlmsg_type != RTM_NEWLINK) continue;
      const auto* ifi = static_cast<ifinfomsg*>(NLMSG_DATA(nh));
      int len = static_cast<int>(IFLA_PAYLOAD(nh));
      for (auto* a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type != IFLA_LINK_NETNSID) continue;
        int peer_ns = -1;
        std::memcpy(&peer_ns, RTA_DATA(a), sizeof(int));
        if (peer_ns == *id) out.push_back(ifi->ifi_index);
      }
    }
  }
}

}  // namespace shunt::netns
