// H1ClientSession (h1_session.h): an HTTP/1.1 upstream connection of a
// pod's HTTP/2 connection, one request at a time.
#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "proxy/http/h1_session.h"
#include "proxy/http/h1_writer.h"

namespace shunt::proxy::http {

H1ClientSession::H1ClientSession(const H1SessionLimits& limits, Events events)
    : limits_(limits),
      events_(std::move(events)),
      parser_(H1Parser::Kind::kResponse, limits.parser, this) {}

absl::StatusOr<int32_t> H1ClientSession::SubmitRequest(const H2Headers& headers, bool end) {
  if (!can_open()) return absl::UnavailableError("http: the upstream connection is busy");
  absl::string_view method, path, authority;
  bool has_length = false;
  for (const auto& [n, v] : headers) {
    if (n == ":method") method = v;
    if (n == ":path") path = v;
    if (n == ":authority") authority = v;
    if (n == "content-length") has_length = true;
  }
  if (method.empty() || path.empty())
    return absl::InvalidArgumentError("http: a request without :method or :path");
  id_ = next_id_;
  next_id_ += 2;
  open_ = true;
  request_ended_ = end;
  response_ended_ = interim_ = chunked_ = false;
  keep_alive_ = true;
  unconsumed_ = 0;
  out_.Append(absl::StrCat(method, " ", path, " HTTP/1.1\r\n"));
  if (!authority.empty()) out_.Append(absl::StrCat("host: ", authority, "\r\n"));
  std::string cookies;
  for (const auto& [n, v] : headers) {
    if (n.empty() || n[0] == ':') continue;
    if (n == "host" && !authority.empty()) continue;  // :authority said it
    if (n == "cookie") {
      // HTTP/2 may split it in crumbs; HTTP/1.1 has one line (RFC 9113 8.2.3).
      absl::StrAppend(&cookies, cookies.empty() ? "" : "; ", v);
      continue;
    }
    out_.Append(absl::StrCat(n, ": ", v, "\r\n"));
  }
  if (!cookies.empty()) out_.Append(absl::StrCat("cookie: ", cookies, "\r\n"));
  if (!end && !has_length) {
    chunked_ = true;  // HTTP/2 need not say how long; HTTP/1.1 must frame it
    out_.Append("transfer-encoding: chunked\r\n");
  } else if (end && !has_length && (method == "POST" || method == "PUT" || method == "PATCH")) {
    out_.Append("content-length: 0\r\n");  // RFC 9110 8.6: said, for methods with content
  }
  out_.Append("\r\n");
  head_request_ = method == "HEAD";
  return id_;
}

absl::Status H1ClientSession::SubmitResponse(int32_t, const H2Headers&, bool) {
  return absl::FailedPreconditionError("http: a client sends no response");
}

absl::Status H1ClientSession::SubmitInterim(int32_t, const H2Headers&) {
  return absl::FailedPreconditionError("http: a client sends no response");
}

size_t H1ClientSession::Send(int32_t id, absl::string_view data) {
  if (!Current(id) || request_ended_) return 0;
  return QueueH1Body(data, chunked_, limits_.send_buffer, &out_, &wanted_space_);
}

void H1ClientSession::End(int32_t id, H2Headers trailers) {
  if (!Current(id) || request_ended_) return;
  request_ended_ = true;
  if (chunked_) {
    // Trailers go only in a chunked body (with a length, they are lost:
    // HTTP/1.1 has nowhere to put them).
    QueueH1LastChunk(trailers, &out_);
  }
  if (response_ended_) Complete();
}

void H1ClientSession::Complete() {
  closes_.emplace_back(id_, 0);
  open_ = false;
  if (!keep_alive_ || shutdown_) dead_ = true;
}

absl::Status H1ClientSession::Receive(absl::string_view bytes) {
  if (dead_ && !open_) return absl::OkStatus();  // after the last response: ignored
  absl::Status error;
  while (!bytes.empty()) {
    if (parser_.paused()) {
      // A message ended: an interim one's final head follows; after a
      // final one, bytes are the next request's response (or, with none
      // asked, a broken server's). Past the last one: ignored.
      if (dead_ || (open_ && response_ended_)) break;
      parser_.Resume();
    }
    absl::StatusOr<size_t> n = parser_.Feed(bytes);
    if (!n.ok()) {
      error = n.status();
      break;
    }
    if (broken_) {
      error = absl::InvalidArgumentError(
          "http: a response to nothing asked, or a switch to another protocol");
      break;
    }
    bytes.remove_prefix(*n);
    if (*n == 0 && !parser_.paused()) break;
  }
  if (!error.ok()) {
    // A response that cannot be read: the connection is over, its stream
    // with it.
    dead_ = true;
    if (open_) closes_.emplace_back(id_, NGHTTP2_PROTOCOL_ERROR);
    open_ = false;
  }
  std::vector<std::pair<int32_t, uint32_t>> closes;
  closes.swap(closes_);
  for (const auto& [id, code] : closes)
    if (events_.on_close) events_.on_close(id, code);
  if (!error.ok())
    return absl::InvalidArgumentError(absl::StrCat("bad-upstream-response: ", error.message()));
  return absl::OkStatus();
}

void H1ClientSession::ReceiveEof() {
  // A response delimited by the close is complete; one cut short is left
  // open, for the caller to fail.
  if (open_ && !interim_) (void)parser_.FeedEof();
  dead_ = true;
  std::vector<std::pair<int32_t, uint32_t>> closes;
  closes.swap(closes_);
  for (const auto& [id, code] : closes)
    if (events_.on_close) events_.on_close(id, code);
}

void H1ClientSession::OnHead(H1Head& head) {
  if (!open_) {
    broken_ = true;  // nothing was asked: Receive ends the connection
    return;
  }
  H2Headers h;
  h.reserve(head.headers.size() + 1);
  h.emplace_back(":status", absl::StrCat(head.status));
  interim_ = head.status >= 100 && head.status < 200;
  // Heads that have no body whatever their framing says (RFC 9112 6.3):
  // http-parser is told, or it would wait for one.
  if (interim_ || head.status == 204 || head.status == 304 || head_request_) parser_.ExpectNoBody();
  if (head.status == 101) {
    // It switched protocols for a request that did not ask (HTTP/2 has
    // no Upgrade): not HTTP any more. Receive ends the connection.
    broken_ = true;
    return;
  }
  for (const auto& [n, v] : head.headers) {
    std::string name = absl::AsciiStrToLower(n);
    // HTTP/2 carries a length as it is (nghttp2 checks it against DATA).
    if (name != "content-length" && IsHopByHop(name, head)) continue;
    h.emplace_back(std::move(name), v);
  }
  if (interim_) {
    if (events_.on_head) events_.on_head(id_, h, false);
    return;
  }
  keep_alive_ = head.keep_alive;
  const bool end =
      head_request_ || head.status == 204 || head.status == 304 || head.content_length == 0;
  if (events_.on_head) events_.on_head(id_, h, end);
}

void H1ClientSession::OnBody(absl::string_view piece) {
  if (!open_ || interim_) return;
  unconsumed_ += piece.size();
  if (events_.on_data) events_.on_data(id_, piece);
}

void H1ClientSession::OnMessageEnd() {
  if (!open_) return;
  if (interim_) {
    interim_ = false;  // the final head follows
    return;
  }
  response_ended_ = true;
  if (events_.on_end) events_.on_end(id_);
  if (request_ended_) return Complete();
  // Answered before the whole request was sent (an early 413, a 403): the
  // rest cannot follow on this connection, nor another request.
  keep_alive_ = false;
  Complete();
}

bool H1ClientSession::TakeOutput(ByteBuffer* out) {
  const size_t before = out->size();
  if (!out_.empty()) {
    out->Append(out_.view());
    out_.clear();
  }
  std::vector<std::pair<int32_t, uint32_t>> closes;
  closes.swap(closes_);
  for (const auto& [id, code] : closes)
    if (events_.on_close) events_.on_close(id, code);
  if (wanted_space_ && open_) {
    wanted_space_ = false;
    if (events_.on_send_space) events_.on_send_space(id_);
  }
  if (out_.empty()) out_.Release();
  return out->size() > before || alive();
}

void H1ClientSession::Reset(int32_t id, uint32_t error_code) {
  // A request half sent cannot be taken back: the connection goes.
  if (Current(id)) {
    closes_.emplace_back(id, error_code);
    open_ = false;
  }
  dead_ = true;
}

void H1ClientSession::Consumed(int32_t id, size_t n) {
  if (id == id_) unconsumed_ -= std::min(n, unconsumed_);
}

void H1ClientSession::Shutdown() {
  shutdown_ = true;
  if (!open_) dead_ = true;
}

}  // namespace shunt::proxy::http
