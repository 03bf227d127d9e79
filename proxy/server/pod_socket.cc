#include "proxy/server/pod_socket.h"

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include "shunt/abi/mtls.h"

namespace shunt::proxy {

lib::UniqueFd OpenPodSocket(const Destination& to, const Destination* from, SourceKept* kept) {
  *kept = SourceKept::kNotAsked;
  lib::UniqueFd socket(::socket(to.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket.valid()) return socket;
  const int fd = socket.get();
  const int mark = SHUNT_MTLS_PROXY_MARK;
  setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
  if (!from || from->family != to.family) return socket;
  const int one = 1;
  sockaddr_storage bind_to{};
  socklen_t bind_len = 0;
  bool set = false;
  if (to.family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&bind_to);
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, from->addr.data(), 4);
    bind_len = sizeof(*a);
    set = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) == 0;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&bind_to);
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, from->addr.data(), 16);
    bind_len = sizeof(*a);
    set = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) == 0;
  }
  *kept = set && bind(fd, reinterpret_cast<sockaddr*>(&bind_to), bind_len) == 0
              ? SourceKept::kKept
              : SourceKept::kFailed;
  return socket;
}

bool OriginalDestination(int fd, bool v6, Destination* d) {
  if (!v6) {
    sockaddr_in o{};
    socklen_t len = sizeof(o);
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &o, &len) != 0) return false;
    d->family = AF_INET;
    memcpy(d->addr.data(), &o.sin_addr, 4);
    d->port = ntohs(o.sin_port);
    return true;
  }
  sockaddr_in6 o{};
  socklen_t len = sizeof(o);
  if (getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &o, &len) != 0) return false;
  d->family = AF_INET6;
  memcpy(d->addr.data(), &o.sin6_addr, 16);
  d->port = ntohs(o.sin6_port);
  return true;
}

bool HandoffNeedsTunnel(int fd, bool v6) {
  uint32_t flags = 0;
  socklen_t len = sizeof(flags);
  if (getsockopt(fd, v6 ? SOL_IPV6 : SOL_IP, SHUNT_SO_HANDOFF_FLAGS, &flags, &len) != 0 ||
      len != sizeof(flags))
    return true;
  return (flags & SHUNT_MTLS_F_L7) != 0;
}

}  // namespace shunt::proxy
