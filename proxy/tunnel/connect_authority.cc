#include "proxy/tunnel/connect_authority.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shunt::proxy {
namespace {

constexpr size_t kMaxAuthority = 64;  // "[" 45-byte IPv6 "]:" 5-digit port, with room

absl::Status Bad(absl::string_view authority, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("CONNECT :authority '", authority.substr(0, kMaxAuthority), "': ", why));
}

}  // namespace

std::string Destination::AddressText() const {
  char text[INET6_ADDRSTRLEN] = "";
  inet_ntop(family, addr.data(), text, sizeof(text));
  return text;
}

std::string Destination::ToAuthority() const {
  const std::string text = AddressText();
  return family == AF_INET6 ? absl::StrCat("[", text, "]:", port) : absl::StrCat(text, ":", port);
}

absl::StatusOr<Destination> ParseConnectAuthority(absl::string_view a) {
  if (a.empty()) return Bad(a, "empty");
  if (a.size() > kMaxAuthority) return Bad(a, "longer than 64 bytes");
  const size_t colon = a.rfind(':');
  if (colon == absl::string_view::npos) return Bad(a, "no port (want ADDRESS:PORT)");
  absl::string_view host = a.substr(0, colon), port = a.substr(colon + 1);
  if (port.empty() || port.size() > 5) return Bad(a, "port is not 1..65535");
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return Bad(a, "port is not a decimal number");
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port[0] == '0' || p == 0 || p > 65535) return Bad(a, "port is not 1..65535");
  Destination d;
  d.port = static_cast<uint16_t>(p);
  char text[INET6_ADDRSTRLEN + 1] = "";
  if (!host.empty() && host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return Bad(a, "unclosed '[' around the address");
    host = host.substr(1, host.size() - 2);
    if (host.find('%') != absl::string_view::npos) return Bad(a, "an IPv6 zone is not a pod");
    if (host.size() >= sizeof(text)) return Bad(a, "not an IPv6 address");
    memcpy(text, host.data(), host.size());
    if (inet_pton(AF_INET6, text, d.addr.data()) != 1) return Bad(a, "not an IPv6 address");
    if (IN6_IS_ADDR_V4MAPPED(reinterpret_cast<const in6_addr*>(d.addr.data())))
      return Bad(a, "an IPv4-mapped address: write the IPv4 address");
    d.family = AF_INET6;
    return d;
  }
  if (host.find(':') != absl::string_view::npos)
    return Bad(a, "an IPv6 address must be in brackets");
  if (host.empty() || host.size() >= sizeof(text)) return Bad(a, "not an IPv4 address");
  memcpy(text, host.data(), host.size());
  // inet_pton takes only the dotted quad, with no leading zeros or spaces:
  // one spelling per address.
  if (inet_pton(AF_INET, text, d.addr.data()) != 1)
    return Bad(a, "not an IP address (host names are not tunnelled)");
  d.family = AF_INET;
  return d;
}

sockaddr_storage ToSockaddr(const Destination& d, socklen_t* len) {
  sockaddr_storage ss{};
  if (d.family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(d.port);
    memcpy(&s6->sin6_addr, d.addr.data(), 16);
    *len = sizeof(sockaddr_in6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(d.port);
    memcpy(&s4->sin_addr, d.addr.data(), 4);
    *len = sizeof(sockaddr_in);
  }
  return ss;
}

}  // namespace shunt::proxy
