// An HTTP/1.1 connection as a MessageSession (message_session.h), for
// H2Proxy where a pod and its upstream speak different HTTP versions
// (issue 17 item 5; docs/l7.md "HTTP/1.1 and HTTP/2 across"). Requests on
// an HTTP/1.1 connection follow one another, so each is a stream of its
// own (ids 1, 3, 5...) and at most one is open at a time:
//
//  * H1ServerSession: a pod's HTTP/1.1 connection whose upstream speaks
//    only HTTP/2 (appProtocol kubernetes.io/h2c). Pipelined requests wait
//    (bounded) until the one before is answered; a response without a
//    length is sent chunked (or delimited by the close to an HTTP/1.0
//    client); Host becomes :authority and back; hop-by-hop headers stay on
//    their leg. An Upgrade request reaches H2Proxy with its "upgrade"
//    header (which HTTP/2 cannot carry: H2Proxy answers it) and ends the
//    connection once answered.
//  * H1ClientSession: an HTTP/1.1 upstream connection of a pod's HTTP/2
//    connection (appProtocol http): one request at a time, kept alive
//    between them; a body without content-length goes chunked; a response
//    delimited by the close ends at ReceiveEof.
//
// Parsing is H1Parser's (http-parser, with its smuggling checks), so a
// message is held to the same rules whichever side it came from. Flow
// control, which HTTP/1.1 does not have, is the socket's: wants_input()
// turns false while too much of the peer's body waits to be passed on.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "proxy/common/byte_buffer.h"
#include "proxy/http/h1_parser.h"
#include "proxy/http/message_session.h"

namespace shunt::proxy::http {

// Shared by both sessions: body bytes framed for HTTP/1.1 (a chunk, or as
// they are) into `out` as far as `send_buffer` allows; how many were
// taken, *wanted_space set when not all.
size_t QueueH1Body(absl::string_view data, bool chunked, size_t send_buffer, ByteBuffer* out,
                   bool* wanted_space);
// The last chunk, with trailers (their pseudo-headers skipped).
void QueueH1LastChunk(const H2Headers& trailers, ByteBuffer* out);

struct H1SessionLimits {
  H1Parser::Limits parser;
  size_t window = 256 * 1024;       // the peer's body bytes not yet passed on
  size_t send_buffer = 256 * 1024;  // queued for the socket, per connection
};

class H1ServerSession final : public MessageSession, private H1Parser::Handler {
 public:
  H1ServerSession(const H1SessionLimits& limits, Events events);

  absl::Status Receive(absl::string_view bytes) override;
  void ReceiveEof() override;
  bool TakeOutput(ByteBuffer* out) override;
  bool alive() const override;
  bool wants_input() const override;
  bool can_open() const override { return false; }
  absl::StatusOr<int32_t> SubmitRequest(const H2Headers&, bool) override;
  absl::Status SubmitResponse(int32_t id, const H2Headers& headers, bool end) override;
  absl::Status SubmitInterim(int32_t id, const H2Headers& headers) override;
  size_t Send(int32_t id, absl::string_view data) override;
  void End(int32_t id, H2Headers trailers) override;
  using MessageSession::End;
  void Reset(int32_t id, uint32_t error_code) override;
  void Consumed(int32_t id, size_t n) override;
  void Shutdown() override;

 private:
  void OnHead(H1Head& head) override;
  void OnBody(absl::string_view piece) override;
  void OnMessageEnd() override;
  // Feeds what waits in in_ while the parser takes it.
  void Parse();
  // After the client's EOF: the end once nothing is left to answer, or
  // the stream reset when its request was cut short.
  void AfterEof();
  bool Current(int32_t id) const { return open_ && id == id_; }

  H1SessionLimits limits_;
  Events events_;
  H1Parser parser_;
  ByteBuffer in_, out_;
  int32_t next_id_ = 1, id_ = 0;
  bool open_ = false;  // a request is being read or answered
  bool request_ended_ = false, response_started_ = false, response_ended_ = false;
  bool chunked_ = false;       // the response's body goes chunked
  bool head_request_ = false;  // HEAD: the response has no body
  bool http10_ = false;
  bool closing_ = false;  // the connection ends after this exchange
  bool eof_ = false;      // the client half-closed
  bool failed_ = false;   // reset, or a request that could not be read
  bool wanted_space_ = false;
  size_t unconsumed_ = 0;
  // Closes to report from TakeOutput (never from inside a Submit/End).
  std::vector<std::pair<int32_t, uint32_t>> closes_;
};

class H1ClientSession final : public MessageSession, private H1Parser::Handler {
 public:
  H1ClientSession(const H1SessionLimits& limits, Events events);

  absl::Status Receive(absl::string_view bytes) override;
  void ReceiveEof() override;
  bool TakeOutput(ByteBuffer* out) override;
  bool alive() const override { return !dead_; }
  bool wants_input() const override { return unconsumed_ < limits_.window; }
  bool can_open() const override { return !dead_ && !shutdown_ && !open_; }
  absl::StatusOr<int32_t> SubmitRequest(const H2Headers& headers, bool end) override;
  absl::Status SubmitResponse(int32_t, const H2Headers&, bool) override;
  absl::Status SubmitInterim(int32_t, const H2Headers&) override;
  size_t Send(int32_t id, absl::string_view data) override;
  void End(int32_t id, H2Headers trailers) override;
  using MessageSession::End;
  void Reset(int32_t id, uint32_t error_code) override;
  void Consumed(int32_t id, size_t n) override;
  void Shutdown() override;

 private:
  void OnHead(H1Head& head) override;
  void OnBody(absl::string_view piece) override;
  void OnMessageEnd() override;
  bool Current(int32_t id) const { return open_ && id == id_; }
  // Both halves over: the stream closes, the connection takes the next.
  void Complete();

  H1SessionLimits limits_;
  Events events_;
  H1Parser parser_;
  ByteBuffer out_;
  int32_t next_id_ = 1, id_ = 0;
  bool open_ = false;
  bool request_ended_ = false, response_ended_ = false;
  bool chunked_ = false;       // the request's body goes chunked
  bool interim_ = false;       // the head read is a 1xx
  bool head_request_ = false;  // the response has no body whatever it says
  bool keep_alive_ = true;     // the response lets the connection go on
  bool dead_ = false;          // no more requests on this connection
  bool broken_ = false;        // a response nothing asked for, or a 101
  bool shutdown_ = false;
  bool wanted_space_ = false;
  size_t unconsumed_ = 0;
  std::vector<std::pair<int32_t, uint32_t>> closes_;
};

}  // namespace shunt::proxy::http
