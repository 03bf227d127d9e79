// The agent's local API: a unix stream socket. A client writes one request
// line ("status") and reads one JSON document back; the agent closes the
// connection after answering. Served from the agent's single event loop.
#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::api {

class ApiServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;

  // Replaces a stale socket file (no listener behind it); FailedPrecondition
  // if another agent is listening there.
  static absl::StatusOr<ApiServer> Listen(const std::string& path, Handler handler);
  ApiServer(ApiServer&&) = default;
  ~ApiServer();

  int fd() const { return listen_.get(); }
  // Accepts and answers every pending connection.
  void ServePending();

 private:
  ApiServer(std::string path, lib::UniqueFd fd, Handler h)
      : path_(std::move(path)), listen_(std::move(fd)), handler_(std::move(h)) {}
  std::string path_;
  lib::UniqueFd listen_;
  Handler handler_;
};

// Client side, used by shuntctl: one request, one answer. Unavailable when
// no agent listens.
absl::StatusOr<std::string> ApiCall(const std::string& path, const std::string& request,
                                    int timeout_ms = 2000);

}  // namespace shunt::api
