#include "tools/bench/connection.h"

#include <sys/socket.h>

#include "agent/lib/status_macros.h"
#include "test/e2e/harness/sock_util.h"
#include "tools/bench/blocking_io.h"

namespace shunt::bench {

namespace {
// Generous: a healthy path answers in microseconds; this only turns a stuck
// path into an error instead of a hang.
constexpr int kIoTimeoutMs = 30000;
}  // namespace

absl::StatusOr<lib::UniqueFd> ListenInPod(const e2e::TestNode& node, const e2e::TestPod& server,
                                          uint16_t port) {
  SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd fd, node.PodSocket(server, SOCK_STREAM));
  SHUNT_RETURN_IF_ERROR(e2e::ListenOn(fd.get(), port));  // binds 0.0.0.0
  return fd;
}

absl::StatusOr<Connection> Connect(const e2e::TestNode& node, const e2e::TestPod& client,
                                   const std::string& ip, uint16_t port, int listen_fd) {
  Connection c;
  SHUNT_ASSIGN_OR_RETURN(c.client, node.PodSocket(client, SOCK_STREAM));
  SHUNT_RETURN_IF_ERROR(e2e::ConnectTo(c.client.get(), ip, port));
  SHUNT_ASSIGN_OR_RETURN(c.server, e2e::AcceptOne(listen_fd, 5000));
  SHUNT_RETURN_IF_ERROR(TuneSocket(c.client.get(), kIoTimeoutMs));
  SHUNT_RETURN_IF_ERROR(TuneSocket(c.server.get(), kIoTimeoutMs));
  return c;
}

}  // namespace shunt::bench
