// Plain blocking socket I/O for the measurement loops: one syscall per
// message when the kernel allows it, loops over short reads and writes, no
// poll() in between (sock_util's readiness-driven helpers would add a
// syscall to every round trip).
#pragma once

#include <cstddef>

#include "absl/status/status.h"

namespace shunt::bench {

// TCP_NODELAY (so 64-byte messages are never held back by Nagle; haproxy
// sets it on its own sockets too) and send/receive timeouts, so that a path
// that stops moving bytes fails the run instead of hanging it.
absl::Status TuneSocket(int fd, int timeout_ms);

// Errors: the send errno; DeadlineExceeded when the send timeout expired.
absl::Status WriteFull(int fd, const void* buf, size_t n);
// Errors: the recv errno; DataLoss on EOF before n bytes; DeadlineExceeded
// when the receive timeout expired.
absl::Status ReadFull(int fd, void* buf, size_t n);

}  // namespace shunt::bench
