// The agent <-> proxy channel: JSON documents, one per line, over a stream
// socket (a socketpair the agent made; only the two processes hold it).
// Reads never block; a write waits at most the socket's send timeout, which
// the owner sets (the peer reads continuously).
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "agent/lib/unique_fd.h"
#include "nlohmann/json.hpp"

namespace shunt::proxy {

class LineChannel {
 public:
  // A longer line is an error: the channel is broken.
  static constexpr size_t kMaxLine = 256u << 20;
  explicit LineChannel(lib::UniqueFd fd) : fd_(std::move(fd)) {}
  int fd() const { return fd_.get(); }

  // Reads what is waiting and parses each complete line. Unavailable once
  // the peer closed; DataLoss for a line that is not JSON or too long.
  absl::Status Read(std::vector<nlohmann::json>* docs);
  // Sends one document as a line.
  absl::Status Send(const nlohmann::json& doc);

 private:
  lib::UniqueFd fd_;
  std::string in_;
};

}  // namespace shunt::proxy
