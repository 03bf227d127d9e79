// Socket helpers for end-to-end tests: readiness-driven reads and writes
// that behave the same on blocking and non-blocking sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"

namespace shunt::e2e {

absl::Status ListenOn(int fd, uint16_t port);
absl::Status ConnectTo(int fd, const std::string& ip, uint16_t port);
// Starts a non-blocking connect to ip:port (IPv4, or IPv6 on an AF_INET6
// socket) and reports whether the handshake completes within `ms`.
bool ConnectsWithin(int fd, const std::string& ip, uint16_t port, int ms);
absl::StatusOr<lib::UniqueFd> AcceptOne(int listen_fd, int timeout_ms = 5000);

// Writes all of `data`, waiting for POLLOUT as needed.
absl::Status WriteAll(int fd, const std::string& data, int timeout_ms = 30000);
// Reads until EOF; error codes from the socket come back as ErrnoToStatus.
absl::StatusOr<std::string> ReadToEof(int fd, int timeout_ms = 30000);
// Reads exactly n bytes.
absl::StatusOr<std::string> ReadExactly(int fd, size_t n, int timeout_ms = 10000);

// `rounds` request/response exchanges over a connected pair: the client
// writes `req` bytes, the server reads them, waits `delay`, writes `resp`
// bytes, the client reads them. Returns each exchange's response time as
// the data path measures it — from the client starting to send the request
// to the server starting to send the response — taken with
// CLOCK_MONOTONIC on both sides. Latency checks compare against these, not
// against `delay`: a sleeping server wakes late, by up to half a
// millisecond on a loaded VM.
absl::StatusOr<std::vector<std::chrono::nanoseconds>> TimedExchanges(
    int client, int server, int rounds, size_t req, size_t resp, std::chrono::microseconds delay);
// One small request/response with plain reads on a new connection, as an
// application's first exchange: after it both ends have been seen reading
// with recvmsg, so the same-node short-circuit carries what follows (until
// then a flow takes TCP: docs/short-circuit.md).
absl::Status WarmUp(int client, int server);
// The median of `v` in microseconds (0 for none).
double MedianUs(std::vector<std::chrono::nanoseconds> v);

// A socket made by a short-lived child process that joins `cgroup` and the
// network namespace at `netns_path` first, handed back over SCM_RIGHTS. A
// socket belongs to its creator's cgroup and namespace; a child does it so
// that the test process itself never enters a pod's cgroup (the agent
// binds a pod to the namespace of its cgroup's oldest process).
absl::StatusOr<lib::UniqueFd> SocketAs(const std::string& cgroup, const std::string& netns_path,
                                       int domain, int type, int protocol = 0);
// `count` such sockets from one child.
absl::StatusOr<std::vector<lib::UniqueFd>> SocketsAs(const std::string& cgroup,
                                                     const std::string& netns_path, int domain,
                                                     int type, int protocol, int count);

std::string RandomBytes(size_t n, uint64_t seed);
uint64_t Fnv1a(const std::string& data);

}  // namespace shunt::e2e
