#include "proxy/http/h1_parser.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace shunt::proxy::http {
namespace {

H1Parser* Self(http_parser* p) { return static_cast<H1Parser*>(p->data); }

}  // namespace

// One table for every parser (it only names the callbacks).
const http_parser_settings& H1Parser::Settings() {
  static const http_parser_settings settings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &H1Parser::OnMessageBegin;
    s.on_url = &H1Parser::OnUrl;
    s.on_status = &H1Parser::OnStatus;
    s.on_header_field = &H1Parser::OnHeaderField;
    s.on_header_value = &H1Parser::OnHeaderValue;
    s.on_headers_complete = &H1Parser::OnHeadersComplete;
    s.on_body = &H1Parser::OnBodyPiece;
    s.on_message_complete = &H1Parser::OnMessageComplete;
    return s;
  }();
  return settings;
}

namespace {}  // namespace

absl::string_view H1Head::Header(absl::string_view name) const {
  for (const auto& [n, v] : headers)
    if (absl::EqualsIgnoreCase(n, name)) return v;
  return {};
}

std::pair<std::string, std::string>& H1Head::AddHeader() {
  if (spare.empty()) return headers.emplace_back();
  headers.push_back(std::move(spare.back()));
  spare.pop_back();
  return headers.back();
}

void H1Head::Release() {
  Reset();
  std::string().swap(method);
  std::string().swap(target);
  std::vector<std::pair<std::string, std::string>>().swap(headers);
  std::vector<std::pair<std::string, std::string>>().swap(spare);
}

bool H1Head::KeepInPool() const {
  size_t bytes = method.capacity() + target.capacity();
  for (const auto* list : {&headers, &spare})
    for (const auto& [n, v] : *list) bytes += n.capacity() + v.capacity();
  return bytes <= kMaxKeptBytes;
}

void H1Head::Reset() {
  method.clear();
  target.clear();
  status = 0;
  version_major = version_minor = 1;
  for (auto& h : headers) {
    h.first.clear();
    h.second.clear();
    spare.push_back(std::move(h));
  }
  headers.clear();
  content_length = -1;
  chunked = false;
  keep_alive = true;
  upgrade = false;
}

H1Parser::H1Parser(Kind kind, Limits limits, Handler* handler)
    : kind_(kind), limits_(limits), handler_(handler) {
  http_parser_init(&parser_, kind == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE);
  parser_.data = this;
}

int H1Parser::Reject(int status, std::string reason) {
  error_status_ = status;
  error_ = std::move(reason);
  // Stops http-parser with HPE_CB_* from any callback (on_headers_complete
  // reads 1 and 2 as "no body", so not those).
  return -1;
}

bool H1Parser::CountHead(size_t n) {
  head_bytes_ += n;
  return head_bytes_ <= limits_.max_head_bytes;
}

absl::StatusOr<size_t> H1Parser::Feed(absl::string_view data) {
  if (failed_) return absl::FailedPreconditionError(absl::StrCat("http: ", error_));
  if (paused_ || data.empty()) return 0;
  feed_start_ = data.data();
  const size_t n = http_parser_execute(&parser_, &Settings(), data.data(), data.size());
  const http_errno e = HTTP_PARSER_ERRNO(&parser_);
  feed_start_ = nullptr;
  if (n > 0) prev_feed_ended_line_ = data[n - 1] == '\n';
  if (e == HPE_PAUSED) {
    paused_ = true;
    return n;
  }
  if (e == HPE_OK) return n;
  failed_ = true;
  if (error_.empty()) {
    error_status_ = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    error_ = http_errno_description(e);
  }
  return absl::InvalidArgumentError(absl::StrCat("http: ", error_));
}

absl::Status H1Parser::FeedEof() {
  if (failed_) return absl::FailedPreconditionError(absl::StrCat("http: ", error_));
  const bool was_in_message = in_message_;
  http_parser_execute(&parser_, &Settings(), nullptr, 0);
  if (HTTP_PARSER_ERRNO(&parser_) != HPE_OK && HTTP_PARSER_ERRNO(&parser_) != HPE_PAUSED) {
    failed_ = true;
    error_status_ = 400;
    error_ = "the connection closed in the middle of a message";
    return absl::InvalidArgumentError(absl::StrCat("http: ", error_));
  }
  if (was_in_message && in_message_) {
    failed_ = true;
    error_status_ = 400;
    error_ = "the connection closed in the middle of a message";
    return absl::InvalidArgumentError(absl::StrCat("http: ", error_));
  }
  return absl::OkStatus();
}

void H1Parser::Reset() {
  http_parser_init(&parser_, kind_ == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE);
  parser_.data = this;
  head_.reset();
  head_bytes_ = 0;
  last_was_value_ = prev_feed_ended_line_ = false;
  in_message_ = no_body_ = paused_ = failed_ = false;
  error_status_ = 0;
  error_.clear();
}

void H1Parser::Resume() {
  if (!paused_) return;
  paused_ = false;
  http_parser_pause(&parser_, 0);
}

int H1Parser::OnMessageBegin(http_parser* p) {
  H1Parser* s = Self(p);
  if (s->head_) {
    s->head_->Reset();
  } else {
    s->head_ = TakePooled<H1Head>();  // Reset already
  }
  s->head_bytes_ = 0;
  s->last_was_value_ = false;
  s->in_message_ = true;
  return 0;
}

int H1Parser::OnUrl(http_parser* p, const char* at, size_t n) {
  H1Parser* s = Self(p);
  if (!s->CountHead(n)) return s->Reject(431, "the request line and headers are too large");
  s->head_->target.append(at, n);
  return 0;
}

int H1Parser::OnStatus(http_parser* p, const char*, size_t n) {
  H1Parser* s = Self(p);
  if (!s->CountHead(n)) return s->Reject(431, "the status line and headers are too large");
  return 0;
}

int H1Parser::OnHeaderField(http_parser* p, const char* at, size_t n) {
  H1Parser* s = Self(p);
  if (!s->CountHead(n)) return s->Reject(431, "the headers are too large");
  const absl::string_view piece(at, n);
  // "Host : x" is a smuggling shape (RFC 9112 5.1: reject it).
  if (piece.find_first_of(" \t") != absl::string_view::npos)
    return s->Reject(400, "whitespace in a header name");
  if (s->last_was_value_ || s->head_->headers.empty()) {
    if (s->head_->headers.size() >= s->limits_.max_headers)
      return s->Reject(431, absl::StrCat("more than ", s->limits_.max_headers, " headers"));
    s->head_->AddHeader();
  }
  s->head_->headers.back().first.append(piece.data(), piece.size());
  s->last_was_value_ = false;
  return 0;
}

int H1Parser::OnHeaderValue(http_parser* p, const char* at, size_t n) {
  H1Parser* s = Self(p);
  if (!s->CountHead(n)) return s->Reject(431, "the headers are too large");
  if (s->head_->headers.empty()) return s->Reject(400, "a header value without a name");
  // http-parser joins an obs-fold continuation line to the value as a
  // second piece; a second piece is otherwise only the rest of a value cut
  // by the end of a Feed.
  if (s->last_was_value_ && (at != s->feed_start_ || s->prev_feed_ended_line_))
    return s->Reject(400, absl::StrCat("a folded line in header '",
                                       s->head_->headers.back().first.substr(0, 64), "'"));
  s->head_->headers.back().second.append(at, n);
  s->last_was_value_ = true;
  return 0;
}

int H1Parser::OnHeadersComplete(http_parser* p) {
  H1Parser* s = Self(p);
  H1Head& h = *s->head_;
  for (auto& [name, value] : h.headers) {
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  }
  if (s->kind_ == Kind::kRequest) {
    h.method = http_method_str(static_cast<http_method>(p->method));
  } else {
    h.status = static_cast<int>(p->status_code);
  }
  h.version_major = p->http_major;
  h.version_minor = p->http_minor;
  // http-parser takes any digit; HTTP/2 has its own preface (detected
  // before this parser sees a byte).
  if (h.version_major != 1 || h.version_minor > 1)
    return s->Reject(
        505, absl::StrCat("unsupported HTTP version ", h.version_major, ".", h.version_minor));
  h.chunked = (p->flags & F_CHUNKED) != 0;
  h.content_length =
      (p->flags & F_CONTENTLENGTH) ? static_cast<int64_t>(p->content_length) : int64_t{-1};
  h.upgrade = p->upgrade;
  h.keep_alive = http_should_keep_alive(p) != 0;
  s->handler_->OnHead(h);
  // A response to HEAD has the headers of a body but none.
  if (s->kind_ == Kind::kResponse && s->no_body_) return 1;
  return 0;
}

int H1Parser::OnBodyPiece(http_parser* p, const char* at, size_t n) {
  Self(p)->handler_->OnBody({at, n});
  return 0;
}

int H1Parser::OnMessageComplete(http_parser* p) {
  H1Parser* s = Self(p);
  s->in_message_ = false;
  s->no_body_ = false;
  s->handler_->OnMessageEnd();
  // One message at a time: the next waits for Resume (pipelining in order).
  if (!p->upgrade) http_parser_pause(p, 1);
  return 0;
}

}  // namespace shunt::proxy::http
