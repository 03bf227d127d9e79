// HTTP/1.x messages of one direction (requests, or responses), parsed by
// Node's http-parser (Debian's libhttp-parser 2.9.4: maintained, fuzzed for
// a decade, and strict where request smuggling lives: Content-Length with
// Transfer-Encoding, a Transfer-Encoding that does not end in chunked,
// differing Content-Lengths and bad chunk sizes are errors there). On top
// of it, what it lets through and a proxy must not: whitespace before a
// header's colon, obsolete line folding, too many or too large headers.
//
// Sans-I/O: Feed bytes, get the head, body pieces (chunked bodies arrive
// de-chunked, a piece at a time, never buffered whole) and the end of each
// message. With pipelining, the parser stops after each message until
// Resume(), so a proxy answers requests in order.
#pragma once

#include <http_parser.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/common/object_pool.h"

namespace shunt::proxy::http {

struct H1Head {
  // Requests.
  std::string method;  // "GET"
  std::string target;  // "/path?query" as sent
  // Responses.
  int status = 0;
  int version_major = 1, version_minor = 1;
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  // Entries of earlier messages' headers, emptied, their strings keeping
  // their memory: a connection's next message makes its headers from them
  // (AddHeader), so its requests allocate nothing once they have grown.
  std::vector<std::pair<std::string, std::string>> spare;
  int64_t content_length = -1;  // -1: none
  bool chunked = false;
  bool keep_alive = true;  // after this message, the connection goes on
  bool upgrade = false;    // Upgrade (or CONNECT): bytes after the head are not HTTP

  // The first value of `name` (case-insensitive), or empty.
  absl::string_view Header(absl::string_view name) const;
  // A new, empty header at the end of `headers` (a spare one if any).
  std::pair<std::string, std::string>& AddHeader();
  // As new, keeping what was allocated (the next message of a connection
  // reuses it: shunt-l7-alloc-bench).
  void Reset();
  // As new, and what it kept is given back (a connection gone idle).
  void Release();
  // For object_pool.h: a head whose strings grew past this is not kept.
  bool KeepInPool() const;
  static constexpr size_t kMaxKeptBytes = 16 * 1024;
};

class H1Parser {
 public:
  enum class Kind { kRequest, kResponse };
  struct Limits {
    size_t max_head_bytes = 64 * 1024;  // request line or status line and headers
    size_t max_headers = 100;
  };
  class Handler {
   public:
    virtual void OnHead(H1Head& head) = 0;
    virtual void OnBody(absl::string_view piece) = 0;
    virtual void OnMessageEnd() = 0;

   protected:
    ~Handler() = default;
  };

  H1Parser(Kind kind, Limits limits, Handler* handler);
  H1Parser(const H1Parser&) = delete;
  H1Parser& operator=(const H1Parser&) = delete;

  // Parses `data`; returns how much of it was used: all of it, or less when
  // the parser stopped after a message (Resume, then feed the rest) or
  // after an upgrade's head (the rest is the upgraded stream's). An error
  // says what is wrong; error_status() is the HTTP status to answer it
  // with (400, or 431 for headers too large). After an error, nothing more.
  absl::StatusOr<size_t> Feed(absl::string_view data);
  // The connection ended: completes a response delimited by close, or
  // says a message was cut short.
  absl::Status FeedEof();
  // Responses: the request was HEAD (or the status has no body).
  void ExpectNoBody() { no_body_ = true; }
  void Resume();
  // As new, for another connection (not from inside a Handler call).
  void Reset();
  // Between messages: the head's memory goes back to the thread's pool
  // (an idle connection keeps none); the next message takes one again.
  void ReleaseHead() {
    if (!in_message_) head_.reset();
  }
  bool paused() const { return paused_; }
  // Between messages (nothing of the next one read yet).
  bool idle() const { return !in_message_; }
  int error_status() const { return error_status_; }

 private:
  static const http_parser_settings& Settings();
  static int OnMessageBegin(http_parser* p);
  static int OnUrl(http_parser* p, const char* at, size_t n);
  static int OnStatus(http_parser* p, const char* at, size_t n);
  static int OnHeaderField(http_parser* p, const char* at, size_t n);
  static int OnHeaderValue(http_parser* p, const char* at, size_t n);
  static int OnHeadersComplete(http_parser* p);
  static int OnBodyPiece(http_parser* p, const char* at, size_t n);
  static int OnMessageComplete(http_parser* p);
  // Stops the parser with `status` and `reason`.
  int Reject(int status, std::string reason);
  bool CountHead(size_t n);

  Kind kind_;
  Limits limits_;
  Handler* handler_;
  http_parser parser_;
  Pooled<H1Head> head_;  // while a message is read, and until ReleaseHead
  size_t head_bytes_ = 0;
  bool last_was_value_ = false;
  // Where the current Feed's bytes begin, and whether the previous Feed
  // ended with a line feed: a value piece not at the start of a Feed, or
  // after such an end, that follows another value piece is a folded line.
  const char* feed_start_ = nullptr;
  bool prev_feed_ended_line_ = false;
  bool in_message_ = false;
  bool no_body_ = false;
  bool paused_ = false;
  bool failed_ = false;
  int error_status_ = 0;
  std::string error_;
};

}  // namespace shunt::proxy::http
