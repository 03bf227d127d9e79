// H1ServerSession (h1_session.h): a pod's HTTP/1.1 connection, its
// requests as streams one after another, for an upstream that speaks only
// HTTP/2.
#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "proxy/http/h1_session.h"
#include "proxy/http/h1_writer.h"

namespace shunt::proxy::http {
namespace {

// Upgrade: h2c alone (what curl --http2 sends to an http:// URL) is
// declined as a server that does not take it declines (RFC 9110 7.8): the
// request goes on without it. Any other protocol is a real upgrade.
bool OffersOnlyH2c(absl::string_view upgrade) {
  for (absl::string_view token : absl::StrSplit(upgrade, ','))
    if (!absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(token), "h2c")) return false;
  return true;
}

}  // namespace

size_t QueueH1Body(absl::string_view data, bool chunked, size_t send_buffer, ByteBuffer* out,
                   bool* wanted_space) {
  if (out->size() >= send_buffer) {
    *wanted_space = true;
    return 0;
  }
  const size_t n = std::min(send_buffer - out->size(), data.size());
  if (chunked)
    WriteChunk(data.substr(0, n), out);
  else
    out->Append(data.substr(0, n));
  if (n < data.size()) *wanted_space = true;
  return n;
}

void QueueH1LastChunk(const H2Headers& trailers, ByteBuffer* out) {
  out->Append("0\r\n");
  for (const auto& [n, v] : trailers)
    if (n.empty() || n[0] != ':') out->Append(absl::StrCat(n, ": ", v, "\r\n"));
  out->Append("\r\n");
}

H1ServerSession::H1ServerSession(const H1SessionLimits& limits, Events events)
    : limits_(limits),
      events_(std::move(events)),
      parser_(H1Parser::Kind::kRequest, limits.parser, this) {}

absl::Status H1ServerSession::Receive(absl::string_view bytes) {
  if (failed_) return absl::FailedPreconditionError("http: the connection is over");
  if (closing_ && (!open_ || request_ended_)) return absl::OkStatus();  // nothing more is read
  in_.Append(bytes);
  Parse();
  return absl::OkStatus();
}

void H1ServerSession::Parse() {
  // The parser stops after each request; it goes on once that one is
  // answered (responses in order).
  if (!open_ && !closing_ && parser_.paused()) parser_.Resume();
  while (!failed_ && !in_.empty() && !parser_.paused()) {
    if (closing_ && (!open_ || request_ended_)) {
      in_.clear();  // after an upgrade's head or a last request: not HTTP to us
      break;
    }
    absl::StatusOr<size_t> n = parser_.Feed(in_.view());
    if (!n.ok()) {
      // A request that cannot be read: 400 (or 431) if nothing of an
      // answer went yet, and the connection ends; the open stream, if
      // any, is reset (its upstream stream cancelled).
      if (open_) closes_.emplace_back(id_, NGHTTP2_PROTOCOL_ERROR);
      if (!response_started_ || !open_) {
        const int status = parser_.error_status() ? parser_.error_status() : 400;
        WriteLocalResponse(status, {}, absl::StrCat(ReasonPhrase(status), "\n"), true, &out_);
        // (An open stream is counted when it closes.)
        if (!open_ && events_.on_rejected) events_.on_rejected(status, n.status().message());
      } else {
        failed_ = true;
      }
      open_ = false;
      closing_ = true;
      in_.clear();
      return;
    }
    in_.Consume(*n);
    if (*n == 0) break;
  }
  if (in_.empty()) in_.Release();
}

void H1ServerSession::OnHead(H1Head& head) {
  id_ = next_id_;
  next_id_ += 2;
  open_ = true;
  request_ended_ = response_started_ = response_ended_ = chunked_ = false;
  unconsumed_ = 0;
  head_request_ = head.method == "HEAD";
  http10_ = head.version_minor == 0;
  if (!head.keep_alive || head.upgrade) closing_ = true;
  absl::string_view authority = head.Header("host");
  absl::string_view path = head.target;
  if (!path.empty() && path[0] != '/' && path != "*") {
    // absolute-form ("http://host/path"): its authority is the request's.
    const size_t scheme = path.find("://");
    if (scheme != absl::string_view::npos) {
      path.remove_prefix(scheme + 3);
      const size_t slash = path.find('/');
      authority = path.substr(0, slash);
      path = slash == absl::string_view::npos ? absl::string_view("/") : path.substr(slash);
    }
  }
  H2Headers h;
  h.reserve(head.headers.size() + 4);
  h.emplace_back(":method", head.method);
  h.emplace_back(":scheme", "http");
  if (!authority.empty()) h.emplace_back(":authority", std::string(authority));
  h.emplace_back(":path", path.empty() ? std::string("/") : std::string(path));
  for (const auto& [n, v] : head.headers) {
    std::string name = absl::AsciiStrToLower(n);
    if (name == "host") continue;
    if (name == "te") {
      // The only TE HTTP/2 carries (RFC 9113 8.2.2).
      if (absl::EqualsIgnoreCase(v, "trailers")) h.emplace_back(std::move(name), v);
      continue;
    }
    // Kept for H2Proxy to answer: HTTP/2 cannot carry it. (Either way
    // the connection ends after this request: the parser reads nothing
    // after an upgrade's head.)
    if (name == "upgrade" && head.upgrade) {
      if (!OffersOnlyH2c(v)) h.emplace_back(std::move(name), v);
      continue;
    }
    // HTTP/2 carries a length as it is (nghttp2 checks it against DATA).
    if (name != "content-length" && IsHopByHop(name, head)) continue;
    h.emplace_back(std::move(name), v);
  }
  const bool end = !head.chunked && head.content_length <= 0;
  if (events_.on_head) events_.on_head(id_, h, end);
}

void H1ServerSession::OnBody(absl::string_view piece) {
  if (!open_) return;
  unconsumed_ += piece.size();
  if (events_.on_data) events_.on_data(id_, piece);
}

void H1ServerSession::OnMessageEnd() {
  if (!open_) return;
  request_ended_ = true;
  if (events_.on_end) events_.on_end(id_);
  if (open_ && response_ended_) {
    closes_.emplace_back(id_, 0);
    open_ = false;
  }
}

void H1ServerSession::ReceiveEof() {
  // The client half-closed: what it sent is still answered (requests read
  // whole, and those waiting in in_), then the connection ends.
  eof_ = true;
  AfterEof();
}

void H1ServerSession::AfterEof() {
  if (!eof_ || failed_) return;
  if (!open_) {
    closing_ = true;  // nothing more will come
  } else if (!request_ended_ && in_.empty()) {
    // Cut short in the middle of a request: it cannot be answered.
    closes_.emplace_back(id_, NGHTTP2_PROTOCOL_ERROR);
    open_ = false;
    failed_ = true;
  }
}

bool H1ServerSession::TakeOutput(ByteBuffer* out) {
  const size_t before = out->size();
  // Closes first: the proxy lets go of the stream, then the next request
  // (pipelined, waiting in in_) may start.
  std::vector<std::pair<int32_t, uint32_t>> closes;
  closes.swap(closes_);
  for (const auto& [id, code] : closes)
    if (events_.on_close) events_.on_close(id, code);
  if (!open_ && !closing_ && !failed_ && !in_.empty()) Parse();  // a pipelined request
  AfterEof();
  closes.clear();
  closes.swap(closes_);
  for (const auto& [id, code] : closes)
    if (events_.on_close) events_.on_close(id, code);
  if (!out_.empty()) {
    out->Append(out_.view());
    out_.clear();
  }
  if (wanted_space_ && open_) {
    wanted_space_ = false;
    if (events_.on_send_space) events_.on_send_space(id_);
  }
  return out->size() > before || alive();
}

bool H1ServerSession::alive() const {
  if (failed_) return false;
  // A last exchange answered (even if the client still sends its body:
  // it said close) and everything written: over.
  return !(closing_ && (!open_ || response_ended_) && out_.empty());
}

bool H1ServerSession::wants_input() const {
  if (eof_ || failed_ || (closing_ && (!open_ || request_ended_))) return false;
  return in_.size() < limits_.window && unconsumed_ < limits_.window;
}

absl::StatusOr<int32_t> H1ServerSession::SubmitRequest(const H2Headers&, bool) {
  return absl::FailedPreconditionError("http: a server sends no request");
}

absl::Status H1ServerSession::SubmitInterim(int32_t id, const H2Headers& headers) {
  if (!Current(id) || response_started_) return absl::FailedPreconditionError("http: no stream");
  if (http10_) return absl::OkStatus();  // HTTP/1.0 has no interim responses
  int status = 0;
  if (headers.empty() || headers[0].first != ":status" ||
      !absl::SimpleAtoi(headers[0].second, &status) || status < 100 || status > 199 ||
      status == 101)
    return absl::InvalidArgumentError("http: not an interim response");
  out_.Append(absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n"));
  for (const auto& [n, v] : headers)
    if (n.empty() || n[0] != ':') out_.Append(absl::StrCat(n, ": ", v, "\r\n"));
  out_.Append("\r\n");
  return absl::OkStatus();
}

absl::Status H1ServerSession::SubmitResponse(int32_t id, const H2Headers& headers, bool end) {
  if (!Current(id) || response_started_) return absl::FailedPreconditionError("http: no stream");
  int status = 0;
  bool has_length = false;
  for (const auto& [n, v] : headers) {
    if (n == ":status") (void)absl::SimpleAtoi(v, &status);
    if (n == "content-length") has_length = true;
  }
  if (status < 200 || status > 999) return absl::InvalidArgumentError("http: no final :status");
  response_started_ = true;
  const bool bodiless = head_request_ || status == 204 || status == 304;
  chunked_ = false;
  bool zero_length = false;
  if (!bodiless && !has_length) {
    if (end)
      zero_length = true;
    else if (!http10_)
      chunked_ = true;
    else
      closing_ = true;  // delimited by the close (HTTP/1.0 knows no chunks)
  }
  out_.Append(absl::StrCat("HTTP/1.1 ", status, " ", ReasonPhrase(status), "\r\n"));
  for (const auto& [n, v] : headers)
    if (n.empty() || n[0] != ':') out_.Append(absl::StrCat(n, ": ", v, "\r\n"));
  if (zero_length) out_.Append("content-length: 0\r\n");
  if (chunked_) out_.Append("transfer-encoding: chunked\r\n");
  if (closing_)
    out_.Append("connection: close\r\n");
  else if (http10_)
    out_.Append("connection: keep-alive\r\n");
  out_.Append("\r\n");
  if (end) End(id, {});
  return absl::OkStatus();
}

size_t H1ServerSession::Send(int32_t id, absl::string_view data) {
  if (!Current(id) || !response_started_ || response_ended_) return 0;
  if (head_request_) return data.size();  // no body on the wire
  return QueueH1Body(data, chunked_, limits_.send_buffer, &out_, &wanted_space_);
}

void H1ServerSession::End(int32_t id, H2Headers trailers) {
  if (!Current(id) || !response_started_ || response_ended_) return;
  response_ended_ = true;
  if (chunked_) QueueH1LastChunk(trailers, &out_);
  if (request_ended_) {
    closes_.emplace_back(id_, 0);
    open_ = false;
  }
}

void H1ServerSession::Reset(int32_t id, uint32_t error_code) {
  if (!Current(id)) return;
  // One request of an HTTP/1.1 connection cannot be cancelled alone: the
  // connection goes (an answer cut short is seen as one).
  closes_.emplace_back(id, error_code);
  open_ = false;
  failed_ = true;
}

void H1ServerSession::Consumed(int32_t id, size_t n) {
  if (id == id_) unconsumed_ -= std::min(n, unconsumed_);
}

void H1ServerSession::Shutdown() {
  closing_ = true;
  if (!open_) in_.clear();
}

}  // namespace shunt::proxy::http
