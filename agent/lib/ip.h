// IP addresses in network byte order, as text.
#pragma once

#include <arpa/inet.h>

#include <cstdint>
#include <string>

namespace shunt::lib {

inline std::string Ipv4String(uint32_t be) {
  char buf[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &be, buf, sizeof(buf));
  return buf;
}

// An IPv6 address (16 bytes, network order) as text.
inline std::string Ipv6String(const void* bytes16) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes16, buf, sizeof(buf));
  return buf;
}

}  // namespace shunt::lib
