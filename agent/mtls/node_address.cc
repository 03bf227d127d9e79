#include "agent/mtls/node_address.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/unique_fd.h"

namespace shunt::mtls {

absl::StatusOr<std::string> DefaultRouteSource() {
  lib::UniqueFd fd(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lib::ErrnoStatus(errno, "--node-ip: socket");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("--node-ip is not given and there is no default route to take it from (",
                     strerror(errno), ")"));
  sockaddr_in me{};
  socklen_t len = sizeof(me);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&me), &len);
  char text[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &me.sin_addr, text, sizeof(text));
  return std::string(text);
}

}  // namespace shunt::mtls
