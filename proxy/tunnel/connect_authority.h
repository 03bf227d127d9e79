// The destination of a tunnelled pod connection, as an HTTP/2 CONNECT
// request carries it in :authority (the HBONE shape): the pod's address and
// port, "10.244.1.7:8080" or "[fd00::7]:8080". Never a host name: the
// receiving proxy connects to exactly that pod, or refuses.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shunt::proxy {

struct Destination {
  int family = AF_INET;            // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};  // network order; IPv4 in the first 4 bytes
  uint16_t port = 0;               // host order

  // "10.244.1.7:8080", "[fd00::7]:8080": what ParseConnectAuthority reads.
  std::string ToAuthority() const;
  // "10.244.1.7", "fd00::7": the address alone.
  std::string AddressText() const;
  bool operator==(const Destination& o) const {
    return family == o.family && addr == o.addr && port == o.port;
  }
};

// InvalidArgument saying what is wrong: empty, a host name, a port out of
// 1..65535 or with a sign, leading zeros or spaces, brackets around IPv4,
// an IPv6 zone, text after the port; at most 64 bytes.
absl::StatusOr<Destination> ParseConnectAuthority(absl::string_view authority);

// A sockaddr for connect() (sockaddr_in or sockaddr_in6).
sockaddr_storage ToSockaddr(const Destination& d, socklen_t* len);

}  // namespace shunt::proxy
