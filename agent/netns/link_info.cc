#include "link_info.h"

#include <linux/if_link.h>
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

}  // namespace shunt::netns
