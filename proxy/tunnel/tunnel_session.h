// One tunnel between two nodes' proxies, above TLS: an HTTP/2 connection
// (libnghttp2) whose streams are pod connections, each opened by a CONNECT
// request with the destination in :authority (HBONE). Sans-I/O: the owner
// feeds it the bytes TLS decrypted (Receive) and writes what it produces
// (TakeOutput), so it is tested without sockets.
//
// Flow control is per stream and end to end: the window of a stream opens
// only as its bytes are delivered (Consumed), so a pod that stops reading
// stops its own stream and no other; a sender's buffer per stream is
// bounded (Send accepts what fits, on_send_space says when to go on).
#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proxy/common/byte_buffer.h"

namespace shunt::proxy {

struct TunnelLimits {
  uint32_t max_streams = 1024;           // SETTINGS_MAX_CONCURRENT_STREAMS we allow the peer
  uint32_t stream_window = 2048 * 1024;  // bytes in flight per stream (receive window)
  uint32_t session_window = 32u << 20;   // the whole tunnel's receive window
  size_t send_buffer = 1024 * 1024;      // queued but not yet framed, per stream
  size_t max_header_list = 8 * 1024;     // a CONNECT request's headers
};

class TunnelSession {
 public:
  enum class Role { kClient, kServer };
  struct Events {
    // Server: a CONNECT for `authority` (checked by nghttp2: no :path or
    // :scheme). Answer with Accept or Refuse, now or later.
    std::function<void(int32_t id, absl::string_view authority)> on_connect;
    // Client: the answer to OpenStream (200: the pod connection is up).
    std::function<void(int32_t id, int status)> on_response;
    // Bytes for the stream's pod socket; call Consumed once written.
    std::function<void(int32_t id, absl::string_view data)> on_data;
    // The peer half-closed the stream (the pod connection's FIN).
    std::function<void(int32_t id)> on_peer_eof;
    // The stream ended: 0 after both directions closed, else the HTTP/2
    // error code of its reset (NGHTTP2_CANCEL, NGHTTP2_CONNECT_ERROR, ...).
    std::function<void(int32_t id, uint32_t error_code)> on_close;
    // The stream's send buffer has room again after Send() fell short.
    std::function<void(int32_t id)> on_send_space;
  };

  static absl::StatusOr<std::unique_ptr<TunnelSession>> Create(Role role,
                                                               const TunnelLimits& limits,
                                                               Events events);
  ~TunnelSession();
  TunnelSession(const TunnelSession&) = delete;
  TunnelSession& operator=(const TunnelSession&) = delete;

  // Bytes from the peer. An error (a protocol violation, a flood the
  // library refuses) ends the session: GOAWAY is queued for output, every
  // stream gets on_close, and the session wants no more input.
  absl::Status Receive(absl::string_view bytes);
  // Appends what is ready to send to `out`; false once the session is over
  // and everything was taken. DATA frames are written from the streams'
  // buffers straight into `out` (NGHTTP2_DATA_FLAG_NO_COPY).
  bool TakeOutput(ByteBuffer* out);
  bool TakeOutput(std::string* out);
  bool alive() const;

  // Client: a new pod connection to `authority`; its id, or an error when
  // the peer allows no more streams now. `forwarded`: the value of a
  // Forwarded header (RFC 7239, "for=..."): the source pod's address,
  // which the server checks against the identity the tunnel proved.
  absl::StatusOr<int32_t> OpenStream(absl::string_view authority, absl::string_view forwarded = {});
  // Server: answer a CONNECT.
  void Accept(int32_t id);
  void Refuse(int32_t id, int http_status);

  // Queues bytes for the peer; returns how many fit (0..data.size()).
  size_t Send(int32_t id, absl::string_view data);
  // The same without a copy: room for `n` bytes at the back of the stream's
  // queue, to be filled (by recv) and then committed with CommitSend; null
  // for an unknown or closed stream. `n` must not exceed SendRoom(id).
  char* SendSpace(int32_t id, size_t n);
  void CommitSend(int32_t id, size_t n);
  // No more bytes from this end (the pod connection's FIN): END_STREAM once
  // what is queued is sent.
  void CloseWrite(int32_t id);
  // Ends the stream now, both ways.
  void Reset(int32_t id, uint32_t error_code);
  // `n` bytes given to on_data reached the pod: the peer may send as many more.
  void Consumed(int32_t id, size_t n);
  // Ends the session gracefully: no new streams, open ones finish.
  void Shutdown();

  // Server: the stream's Forwarded header as received ("" if none).
  absl::string_view forwarded(int32_t id) const;
  size_t open_streams() const { return streams_.size(); }
  bool has_stream(int32_t id) const { return streams_.count(id) > 0; }
  // The error code of the GOAWAY this end sent for a protocol error by the
  // peer (a frame too large, a bad preface, ...), 0 if none.
  uint32_t goaway_error() const { return goaway_error_; }
  // Client: OpenStream would succeed now (alive, under the peer's limit).
  bool can_open() const;
  // How many more bytes Send(id) takes now (0 for an unknown or closed
  // stream). When it is 0 for a full buffer, on_send_space follows.
  size_t SendRoom(int32_t id);
  size_t queued(int32_t id) const;

 private:
  struct Stream {
    ByteBuffer send;  // queued bytes, not yet framed
    bool write_closed = false;
    bool deferred = false;   // the data source said "nothing yet"
    bool providing = false;  // a data provider is submitted
    bool wanted_space = false;
    bool refused = false;   // server: answered with an error status
    std::string authority;  // server: from the request headers
    std::string forwarded;  // server: the Forwarded header
    int status = 0;         // client: from the response headers
  };
  TunnelSession(Role role, const TunnelLimits& limits, Events events);
  Stream* Find(int32_t id);
  void StartData(int32_t id, Stream& s);
  void Kick(Stream& s, int32_t id);

  static ssize_t ReadData(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* self);
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t flags, void* self);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* f, void* self);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                         size_t len, void* self);
  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* self);
  static int SendDataFrame(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                           size_t length, nghttp2_data_source*, void* self);

  Role role_;
  TunnelLimits limits_;
  Events events_;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Stream> streams_;
  ByteBuffer* sink_ = nullptr;  // TakeOutput's `out`, while it runs
  bool failed_ = false;
  uint32_t goaway_error_ = 0;
};

}  // namespace shunt::proxy
