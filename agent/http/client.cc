#include "client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"

namespace shunt::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

absl::StatusOr<Response> UnixRequest(const std::string& socket_path, const std::string& method,
                                     const std::string& target, const std::string& body,
                                     int timeout_ms) {
  // Asynchronous operations on a private io_context, run for at most the
  // timeout: synchronous Asio reads would wait forever on a silent peer.
  net::io_context io;
  net::local::stream_protocol::socket sock(io);
  bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
  req.set(bhttp::field::host, "localhost");
  req.set(bhttp::field::user_agent, "shuntctl");
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.keep_alive(false);
  req.prepare_payload();
  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(256u << 20);  // flows and drops can be large
  boost::system::error_code result = net::error::timed_out;
  std::string stage = "connect";
  sock.async_connect(
      net::local::stream_protocol::endpoint(socket_path), [&](const boost::system::error_code& ec) {
        if (ec) {
          result = ec;
          return;
        }
        stage = "send";
        bhttp::async_write(sock, req, [&](const boost::system::error_code& ec, size_t) {
          if (ec) {
            result = ec;
            return;
          }
          stage = "read";
          bhttp::async_read(sock, buffer, parser,
                            [&](const boost::system::error_code& ec, size_t) { result = ec; });
        });
      });
  io.run_for(std::chrono::milliseconds(timeout_ms));
  if (result == net::error::timed_out)
    return absl::DeadlineExceededError(
        absl::StrCat("agent at ", socket_path, " did not answer within ", timeout_ms, " ms"));
  if (result && stage == "connect")
    return absl::UnavailableError(
        absl::StrCat("agent not reachable at ", socket_path, ": ", result.message()));
  if (result)
    return absl::UnavailableError(
        absl::StrCat("agent at ", socket_path, ": ", stage, ": ", result.message()));
  const auto& res = parser.get();
  Response out;
  out.status = static_cast<int>(res.result_int());
  out.content_type = std::string(res[bhttp::field::content_type]);
  out.body = res.body();
  return out;
}

}  // namespace shunt::http
