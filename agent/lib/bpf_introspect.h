// Kernel-side facts about pinned maps and links, for status output.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace shunt::lib {

struct MapFacts {
  uint32_t id = 0;
  std::string type;  // "hash", "sockhash", ...
  uint32_t key_size = 0, value_size = 0, max_entries = 0;
  uint64_t entries = 0;  // counted by iteration; arrays report max_entries
};

struct LinkFacts {
  uint32_t id = 0;
  std::string type;         // "cgroup", "sockmap"
  std::string attach_type;  // "sock_ops", "sk_msg_verdict"
  uint32_t prog_id = 0;
  std::string prog_name;
  uint64_t target = 0;  // cgroup id or map id
};

absl::StatusOr<MapFacts> DescribeMap(int fd);
absl::StatusOr<LinkFacts> DescribeLink(int fd);

}  // namespace shunt::lib
