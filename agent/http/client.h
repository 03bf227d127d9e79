// A client of the agent's local API: one HTTP/1.1 request over the unix
// socket, for shuntctl and the tests.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "agent/http/router.h"

namespace shunt::http {

// The response, whatever its status. Unavailable naming the socket when no
// agent answers there; DeadlineExceeded after `timeout_ms`.
absl::StatusOr<Response> UnixRequest(const std::string& socket_path, const std::string& method,
                                     const std::string& target, const std::string& body = "",
                                     int timeout_ms = 5000);

}  // namespace shunt::http
