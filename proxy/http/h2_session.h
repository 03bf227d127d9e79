// One HTTP/2 connection of the L7 layer (issue 17 item 5), either end:
// the server side of a pod's h2 connection (prior knowledge), or the client
// side of the proxy's connection to an upstream. libnghttp2 does the
// protocol — framing, HPACK, the header checks RFC 9113 8.2 asks for
// (pseudo-headers, connection-specific headers, content-length against
// DATA), flow control, and the flood limits — this class turns it into
// messages: a head, body pieces, trailers, an end. Sans-I/O like
// TunnelSession: Receive bytes, TakeOutput what to send.
//
// Flow control is end to end: a stream's receive window opens only as its
// body is passed on (Consumed), so a slow reader on the far side slows its
// own stream and no other; what a stream sends is bounded (Send takes what
// fits, on_send_space says when to go on).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/common/byte_buffer.h"
#include "proxy/http/message_session.h"

namespace shunt::proxy::http {

struct H2Limits {
  uint32_t max_streams = 128;           // concurrent streams we allow the peer
  uint32_t stream_window = 256 * 1024;  // receive window per stream
  uint32_t session_window = 4u << 20;   // the connection's receive window
  size_t send_buffer = 256 * 1024;      // queued, not yet framed, per stream
  size_t max_header_list = 64 * 1024;   // a head's headers, decoded (SETTINGS)
};

class H2Session final : public MessageSession {
 public:
  enum class Role { kClient, kServer };
  using Events = MessageSession::Events;

  static absl::StatusOr<std::unique_ptr<H2Session>> Create(Role role, const H2Limits& limits,
                                                           Events events);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Bytes from the peer. An error (a protocol violation, a flood) ends the
  // session: GOAWAY is queued, every stream gets on_close.
  absl::Status Receive(absl::string_view bytes) override;
  // Appends what is ready to send; false once the session is over.
  bool TakeOutput(ByteBuffer* out) override;
  bool alive() const override;
  // Client: the peer takes another stream now.
  bool can_open() const override;
  size_t open_streams() const { return streams_.size(); }
  bool has_stream(int32_t id) const { return streams_.count(id) > 0; }

  // Client: a request; `end` when it has no body. Its stream id.
  absl::StatusOr<int32_t> SubmitRequest(const H2Headers& headers, bool end) override;
  // Server: the response head (":status" first); `end` when no body.
  // An interim (1xx) head may come first.
  absl::Status SubmitResponse(int32_t id, const H2Headers& headers, bool end) override;
  absl::Status SubmitInterim(int32_t id, const H2Headers& headers) override;

  // Queues body bytes; returns how many fit.
  size_t Send(int32_t id, absl::string_view data) override;
  size_t SendRoom(int32_t id);
  // This end's half is over once what is queued is sent (with trailers,
  // if any).
  void End(int32_t id, H2Headers trailers) override;
  using MessageSession::End;
  // Ends the stream now, both ways.
  void Reset(int32_t id, uint32_t error_code) override;
  // `n` bytes given to on_data were passed on: the peer may send as many.
  void Consumed(int32_t id, size_t n) override;
  // Graceful end: no new streams, open ones finish.
  void Shutdown() override;
  // The peer said GOAWAY (a client opens no more streams on it).
  bool peer_going_away() const { return peer_goaway_; }

 private:
  struct Stream {
    ByteBuffer send;
    bool write_closed = false;
    bool deferred = false;
    bool providing = false;  // a data provider is submitted (head sent)
    bool wanted_space = false;
    bool head_seen = false;  // the peer's final head came
    bool end_seen = false;
    H2Headers headers;   // being received
    H2Headers trailers;  // to send after the body
  };
  H2Session(Role role, const H2Limits& limits, Events events);
  Stream* Find(int32_t id);
  void Kick(Stream& s, int32_t id);

  static ssize_t ReadData(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* self);
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags, void* self);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* self);
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* self);

  Role role_;
  H2Limits limits_;
  Events events_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  bool failed_ = false;
  bool peer_goaway_ = false;
};

}  // namespace shunt::proxy::http
