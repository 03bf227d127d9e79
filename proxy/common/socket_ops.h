// Small socket operations every proxy connection does, in one place: no
// Nagle delay, a close that resets, the result of a non-blocking connect,
// and the peer's address as text.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <string>

namespace shunt::proxy {

inline void SetNoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// SO_LINGER 0: the next close() sends RST, as a far end's reset did.
inline void ResetOnClose(int fd) {
  const linger l{.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

// Once a non-blocking connect() reports writable: 0 if connected, else its errno.
inline int ConnectResult(int fd) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

// "10.244.1.5" or "fd00::5"; empty when the socket has no peer.
inline std::string PeerAddressText(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char text[INET6_ADDRSTRLEN] = "";
  const void* a = ss.ss_family == AF_INET6
                      ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr)
                      : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr);
  return inet_ntop(ss.ss_family, a, text, sizeof(text)) ? text : std::string();
}

}  // namespace shunt::proxy
