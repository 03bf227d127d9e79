#include "tools/bench/blocking_io.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::bench {

absl::Status TuneSocket(int fd, int timeout_ms) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
    return lib::ErrnoStatus(errno, "setsockopt TCP_NODELAY");
  timeval tv{.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
    return lib::ErrnoStatus(errno, "setsockopt SO_RCVTIMEO/SO_SNDTIMEO");
  return absl::OkStatus();
}

absl::Status WriteFull(int fd, const void* buf, size_t n) {
  const char* p = static_cast<const char*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return absl::DeadlineExceededError("send: timed out (peer stopped reading)");
    return lib::ErrnoStatus(errno, "send");
  }
  return absl::OkStatus();
}

absl::Status ReadFull(int fd, void* buf, size_t n) {
  char* p = static_cast<char*>(buf);
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, p + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
      continue;
    }
    if (r == 0) return absl::DataLossError(absl::StrCat("EOF after ", got, " of ", n, " bytes"));
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return absl::DeadlineExceededError("recv: timed out (no reply)");
    return lib::ErrnoStatus(errno, "recv");
  }
  return absl::OkStatus();
}

}  // namespace shunt::bench
