// The agent's one HTTP layer, part 1b: how the server reads a request, kept
// apart from the sockets so that it can be tested and fuzzed on bytes
// alone. The server (server.h) reads with Beast's parser configured here,
// turns what it read into a Request here, and answers a read that failed as
// RejectedRead says; ParseRequest runs the same steps over a byte string.
#pragma once

#include <boost/beast/http.hpp>
#include <cstddef>
#include <optional>
#include <string_view>

#include "agent/http/router.h"

namespace shunt::http {

struct RequestLimits {
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
};

using BeastRequest = boost::beast::http::request<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

// Sets the parser's limits: a longer head is header_limit, a longer body
// body_limit.
void ConfigureParser(RequestParser& parser, const RequestLimits& limits);

// The request as handlers see it: the path percent-decoded, the query
// split and decoded, the raw query kept.
Request ToRequest(const BeastRequest& r);

// The answer to a read that ended in `ec` (not a deadline): 431 for a head
// over the limit, 413 for a body over it, 400 for a request the parser
// refused; nullopt when the connection just ends (the client closed, before
// or inside a request, or the socket failed).
std::optional<Response> RejectedRead(const boost::system::error_code& ec,
                                     const RequestLimits& limits);

// What the server makes of `bytes`, the first bytes of a connection, when
// the client then closes it (`eof`) or stops sending.
struct ParsedRequest {
  enum class Outcome {
    kComplete,    // a whole request: `request`, `version`, `keep_alive`
    kIncomplete,  // more bytes are needed (without eof)
    kClosed,      // the connection ends without an answer
    kRejected,    // answered with `answer` (400, 413, 431), then closed
  };
  Outcome outcome = Outcome::kIncomplete;
  Request request;
  unsigned version = 11;
  bool keep_alive = false;
  size_t consumed = 0;  // bytes of the input the request took
  std::optional<Response> answer;
};
ParsedRequest ParseRequest(std::string_view bytes, const RequestLimits& limits, bool eof);

}  // namespace shunt::http
