// Fresh TCP connections between pods, both ends owned by this process: the
// client socket is created in the client pod (its netns and cgroup), the
// server end is accepted from a listener created in the server pod. The
// sockets keep their pods after creation, so any thread can drive them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "test/e2e/harness/sim.h"

namespace shunt::bench {

struct Connection {
  lib::UniqueFd client;
  lib::UniqueFd server;
};

// Listens on 0.0.0.0:port inside `server`, so direct clients (pod IP) and a
// sidecar in the same pod (127.0.0.1) both reach it.
absl::StatusOr<lib::UniqueFd> ListenInPod(const e2e::TestNode& node, const e2e::TestPod& server,
                                          uint16_t port);

// Connects a new socket in `client` to ip:port (the server itself, or a proxy
// in front of it) and accepts the far end from `listen_fd`. Both ends get
// TuneSocket(). Errors: socket/connect errno; DeadlineExceeded when nothing
// arrives at the listener within 5 s (e.g. a proxy that did not forward).
absl::StatusOr<Connection> Connect(const e2e::TestNode& node, const e2e::TestPod& client,
                                   const std::string& ip, uint16_t port, int listen_fd);

// New connections per second, one at a time for `seconds`: connect to
// ip:port, one byte each way, close. The client end runs in a process that
// stays in `client`'s netns and cgroup for the whole measurement (Connect()
// forks for each socket, a cost that would swamp what is measured); this
// process accepts and answers on `listen_fd`. Errors name the connection
// that failed and how.
// `n` connections to ip:port held open by a process that stays in
// `client` (this process keeps only the accepted ends: one descriptor per
// connection, not two); closed when the value is destroyed.
class IdleConnections {
 public:
  static absl::StatusOr<std::unique_ptr<IdleConnections>> Open(const e2e::TestPod& client,
                                                               const std::string& ip, uint16_t port,
                                                               int listen_fd, int n);
  ~IdleConnections();
  size_t size() const { return accepted_.size(); }

 private:
  IdleConnections() = default;
  pid_t child_ = -1;
  lib::UniqueFd hold_;  // the child holds its connections until this closes
  std::vector<lib::UniqueFd> accepted_;
};

absl::StatusOr<double> ConnectionRate(const e2e::TestPod& client, const std::string& ip,
                                      uint16_t port, int listen_fd, double seconds);

}  // namespace shunt::bench
