#include "cidr.h"

#include <arpa/inet.h>

#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shunt::lib {

absl::StatusOr<shunt_cidr_key> ParseCidr(std::string_view view) {
  const std::string text(view);  // this Abseil's StrCat and SimpleAtoi take no std::string_view
  const size_t slash = text.find('/');
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' ", why));
  };
  if (slash == std::string::npos) return bad("is not a range (address/prefix length)");
  const std::string addr(text.substr(0, slash));
  int len = -1;
  if (!absl::SimpleAtoi(text.substr(slash + 1), &len)) return bad("has no prefix length");
  uint8_t bytes[16] = {};
  int offset = 0, max = 128;
  in_addr a4{};
  if (inet_pton(AF_INET, addr.c_str(), &a4) == 1) {
    // ::ffff:a.b.c.d
    bytes[10] = bytes[11] = 0xff;
    std::memcpy(bytes + 12, &a4, 4);
    offset = 96;
    max = 32;
  } else if (inet_pton(AF_INET6, addr.c_str(), bytes) != 1) {
    return bad("is not an IPv4 or IPv6 range");
  }
  if (len < 0 || len > max) return bad(absl::StrCat("has a prefix length outside 0..", max));
  const int bits = offset + len;
  for (int i = bits; i < 128; ++i) {
    if (bytes[i / 8] & (0x80 >> (i % 8))) {
      uint8_t masked[16];
      std::memcpy(masked, bytes, 16);
      for (int j = bits; j < 128; ++j) masked[j / 8] &= static_cast<uint8_t>(~(0x80 >> (j % 8)));
      char buf[INET6_ADDRSTRLEN] = {};
      if (offset == 96)
        inet_ntop(AF_INET, masked + 12, buf, sizeof(buf));
      else
        inet_ntop(AF_INET6, masked, buf, sizeof(buf));
      return bad(absl::StrCat("has bits set past /", len, "; did you mean ", buf, "/", len, "?"));
    }
  }
  shunt_cidr_key key{};
  key.prefixlen = static_cast<__u32>(bits);
  std::memcpy(&key.addr, bytes, 16);
  return key;
}

}  // namespace shunt::lib
