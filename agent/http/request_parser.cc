#include "request_parser.h"

#include "absl/strings/str_cat.h"

namespace shunt::http {

namespace bhttp = boost::beast::http;

void ConfigureParser(RequestParser& parser, const RequestLimits& limits) {
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
  parser.body_limit(limits.max_body_bytes);
}

Request ToRequest(const BeastRequest& r) {
  Request out;
  out.method = std::string(r.method_string());
  const std::string target(r.target());
  const size_t q = target.find('?');
  out.path = PercentDecode(target.substr(0, q));
  if (q != std::string::npos) {
    out.raw_query = target.substr(q + 1);
    out.query = ParseQuery(out.raw_query);
  }
  out.body = r.body();
  return out;
}

std::optional<Response> RejectedRead(const boost::system::error_code& ec,
                                     const RequestLimits& limits) {
  if (ec == bhttp::error::header_limit)
    return Error(431, absl::StrCat("request head over ", limits.max_header_bytes, " bytes"));
  if (ec == bhttp::error::body_limit)
    return Error(413, absl::StrCat("request body over ", limits.max_body_bytes, " bytes"));
  if (ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
    return Error(400, absl::StrCat("malformed request: ", ec.message()));
  return std::nullopt;
}

ParsedRequest ParseRequest(std::string_view bytes, const RequestLimits& limits, bool eof) {
  // As boost::beast::http::async_read drives the parser: put() what is
  // buffered until the message is done or the parser needs more; at the
  // end of the stream, put_eof() if the parser got anything.
  RequestParser parser;
  ConfigureParser(parser, limits);
  parser.eager(true);
  ParsedRequest out;
  boost::system::error_code ec;
  for (;;) {
    if (out.consumed < bytes.size()) {
      const size_t used = parser.put(
          boost::asio::const_buffer(bytes.data() + out.consumed, bytes.size() - out.consumed), ec);
      out.consumed += used;
      if (!ec && parser.is_done()) break;
      if (ec && ec != bhttp::error::need_more) break;
      if (!ec && used > 0) continue;  // the rest of what is buffered
      ec = {};
    }
    // The parser needs more than there is: the end of the stream, or wait.
    if (!eof) return out;  // kIncomplete
    if (parser.got_some())
      parser.put_eof(ec);
    else
      ec = bhttp::error::end_of_stream;
    break;
  }
  if (ec) {
    out.answer = RejectedRead(ec, limits);
    out.outcome = out.answer ? ParsedRequest::Outcome::kRejected : ParsedRequest::Outcome::kClosed;
    return out;
  }
  out.outcome = ParsedRequest::Outcome::kComplete;
  out.version = parser.get().version();
  out.keep_alive = parser.get().keep_alive();
  out.request = ToRequest(parser.get());
  return out;
}

}  // namespace shunt::http
