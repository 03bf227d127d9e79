#include "proxy/control/line_channel.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"

namespace shunt::proxy {

absl::Status LineChannel::Read(std::vector<nlohmann::json>* docs) {
  char buf[64 * 1024];
  bool closed = false;
  for (;;) {
    const ssize_t n = recv(fd_.get(), buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) {
      closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    return lib::ErrnoStatus(errno, "control channel: read");
  }
  size_t start = 0;
  for (size_t nl; (nl = in_.find('\n', start)) != std::string::npos; start = nl + 1) {
    nlohmann::json doc =
        nlohmann::json::parse(in_.begin() + static_cast<std::ptrdiff_t>(start),
                              in_.begin() + static_cast<std::ptrdiff_t>(nl), nullptr,
                              /*allow_exceptions=*/false);
    if (doc.is_discarded())
      return absl::DataLossError(
          absl::StrCat("control channel: a line of ", nl - start, " bytes is not JSON"));
    docs->push_back(std::move(doc));
  }
  in_.erase(0, start);
  if (in_.size() > kMaxLine)
    return absl::DataLossError(
        absl::StrCat("control channel: a line longer than ", kMaxLine, " bytes"));
  if (closed) return absl::UnavailableError("control channel: the peer closed it");
  return absl::OkStatus();
}

absl::Status LineChannel::Send(const nlohmann::json& doc) {
  std::string line =
      doc.dump(-1, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  size_t off = 0;
  while (off < line.size()) {
    const ssize_t n = send(fd_.get(), line.data() + off, line.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return lib::ErrnoStatus(n < 0 ? errno : EPIPE, "control channel: write");
  }
  return absl::OkStatus();
}

}  // namespace shunt::proxy
