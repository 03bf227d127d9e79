// One connection of H2Proxy's, as messages on streams, whatever its wire
// protocol: H2Session (HTTP/2, libnghttp2) or, where the two sides of the
// proxy speak different versions (docs/l7.md "HTTP/1.1 and HTTP/2 across"),
// an HTTP/1.1 connection seen as streams one after another
// (H1ServerSession: a pod's HTTP/1.1 connection to an h2c upstream;
// H1ClientSession: an HTTP/1.1 upstream of a pod's HTTP/2 connection).
// H2Proxy moves heads, bodies and trailers between them without knowing
// which: one engine for routing, retries, timeouts and metrics.
//
// Sans-I/O: Receive bytes, TakeOutput what to send. Events fire from
// inside Receive and TakeOutput only (never from a Submit/Send/End/Reset
// call), so the caller may hold references across those.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/common/byte_buffer.h"

namespace shunt::proxy::http {

// HTTP/2's shape: pseudo-headers (":method", ":path", ":status"...) first,
// names lower-case, no connection-specific headers.
using H2Headers = std::vector<std::pair<std::string, std::string>>;

class MessageSession {
 public:
  struct Events {
    // A head: the request (server), or the response (client; an interim
    // 1xx comes as well, the final one follows). Pseudo-headers first, as
    // received; `end` when no body follows.
    std::function<void(int32_t id, H2Headers& headers, bool end)> on_head;
    // Trailers (the message ends with them).
    std::function<void(int32_t id, H2Headers& trailers)> on_trailers;
    // Body bytes; call Consumed once they are passed on.
    std::function<void(int32_t id, absl::string_view data)> on_data;
    // The peer's half ended (after its body, or its trailers).
    std::function<void(int32_t id)> on_end;
    // The stream is over: 0 once both halves ended, else its reset's code.
    std::function<void(int32_t id, uint32_t error_code)> on_close;
    // The stream's send buffer has room again after Send fell short.
    std::function<void(int32_t id)> on_send_space;
    // Server: a request the session answered itself before any stream
    // carried it (HTTP/1.1: a head that cannot be read, 400 or 431), so
    // that it is counted as a request all the same.
    std::function<void(int status, absl::string_view reason)> on_rejected;
  };

  virtual ~MessageSession() = default;

  // Bytes from the peer. An error ends the session (every stream gets
  // on_close).
  virtual absl::Status Receive(absl::string_view bytes) = 0;
  // The peer closed its side: a response delimited by the connection's
  // end is complete (HTTP/1.x). What is still open is for the caller.
  virtual void ReceiveEof() {}
  // Appends what is ready to send; false once the session is over.
  virtual bool TakeOutput(ByteBuffer* out) = 0;
  virtual bool alive() const = 0;
  // Whether the caller should read more from the socket now: an HTTP/1.1
  // connection has no windows, its peer is held back by not reading.
  virtual bool wants_input() const { return true; }
  // Client: the peer takes another stream now.
  virtual bool can_open() const = 0;

  // Client: a request; `end` when it has no body. Its stream id.
  virtual absl::StatusOr<int32_t> SubmitRequest(const H2Headers& headers, bool end) = 0;
  // Server: the response head (":status" first); `end` when no body.
  // An interim (1xx) head may come first.
  virtual absl::Status SubmitResponse(int32_t id, const H2Headers& headers, bool end) = 0;
  virtual absl::Status SubmitInterim(int32_t id, const H2Headers& headers) = 0;

  // Queues body bytes; returns how many fit.
  virtual size_t Send(int32_t id, absl::string_view data) = 0;
  // This end's half is over once what is queued is sent (with trailers,
  // if any).
  virtual void End(int32_t id, H2Headers trailers) = 0;
  void End(int32_t id) { End(id, H2Headers{}); }
  // Ends the stream now, both ways.
  virtual void Reset(int32_t id, uint32_t error_code) = 0;
  // `n` bytes given to on_data were passed on: the peer may send as many.
  virtual void Consumed(int32_t id, size_t n) = 0;
  // Graceful end: no new streams, open ones finish.
  virtual void Shutdown() = 0;
};

}  // namespace shunt::proxy::http
