// Address ranges as the BPF LPM trie of pod ranges keys them
// (shunt/abi/tc.h: IPv4 stored v4-mapped, prefix length + 96).
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "shunt/abi/tc.h"

namespace shunt::lib {

// "10.244.0.0/16" or "fd00:10:244::/56" -> its key. InvalidArgument naming
// the text: not an address, no or a bad prefix length, or bits set past
// the prefix ("10.244.1.0/16 has bits set past /16; did you mean
// 10.244.0.0/16?").
absl::StatusOr<shunt_cidr_key> ParseCidr(std::string_view text);

}  // namespace shunt::lib
