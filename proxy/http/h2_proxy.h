// One pod's HTTP/2 connection through the L7 layer (issue 17 item 5):
// prior knowledge (the client preface) on a connection the kernel sent to
// the proxy. Every stream is a request, judged as H1Proxy judges one
// (the same ExchangeHooks: HTTPRouteGroup policy, a service's per-request
// pick, metrics, drops); a denied one gets 403 with x-shunt-denied on its
// own stream while the others go on. An allowed one goes to its upstream
// over HTTP/2 too (a client that used prior knowledge knows the server
// speaks it): one connection per upstream address, its streams
// multiplexed, opened from the client's address like H1Proxy's.
//
// Bodies stream both ways under HTTP/2 flow control end to end: a stream's
// window opens on one side only as its bytes are taken by the other, so a
// slow reader holds back its own stream and no other. Trailers pass (gRPC).
// Each request carries its trace on with a span of this hop's.
//
// Retries (h2_retry.cc): a request without a body is sent again when its
// verdict allows retries for the failure (an idempotent method, within the
// budget: Hooks.retry), and once, whatever its method, when the upstream
// refused its stream (REFUSED_STREAM: RFC 9113 8.7 says it was not
// processed; also what a GOAWAY does to streams past its last id). A
// request with a body is not retried (its bytes are not kept).
//
// Not here yet (docs/l7.md): extended CONNECT (WebSocket over h2, RFC
// 8441; the proxy does not offer it, so clients use HTTP/1.1 for it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/lib/unique_fd.h"
#include "proxy/common/byte_buffer.h"
#include "proxy/http/exchange_hooks.h"
#include "proxy/http/h1_parser.h"
#include "proxy/http/h1_session.h"
#include "proxy/http/h2_session.h"
#include "proxy/http/message_session.h"
#include "proxy/loop/event_loop.h"
#include "proxy/loop/stream_io.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy::http {

class H2Proxy : public std::enable_shared_from_this<H2Proxy> {
 public:
  struct Options {
    H2Limits limits;
    size_t max_buffered = 1 << 20;  // per connection, written but not taken by its socket
    // A connection with no stream open closes after this (GOAWAY first).
    int idle_timeout_ms = 60000;
    // A response must start this long after its request's head (504); 0: none.
    int response_timeout_ms = 0;
    // An upstream connection must be established this long after its
    // connect() (its streams fail as a connect failure: a retry, or 502);
    // 0: the kernel's.
    int connect_timeout_ms = 0;
    // A stream on which nothing moves either way this long (a request
    // head or body that stalls, an answer that never comes or is never
    // read) is reset both ways, the client's with CANCEL; 0: never. A
    // slow client holds a stream, and its upstream stream, no longer.
    int stream_idle_timeout_ms = 0;
    // Where the two sides speak different versions (h1_session.h): the
    // pod's connection is HTTP/1.1 (its upstream speaks only HTTP/2), or
    // the upstreams speak HTTP/1.1 (the pod's connection is HTTP/2).
    bool downstream_http1 = false;
    bool upstream_http1 = false;
    H1Parser::Limits h1_limits;
  };

  // `already_read`: what protocol detection read (the preface's start).
  // `downstream`: a socket or an in-process channel (as H1Proxy's).
  static std::shared_ptr<H2Proxy> Start(EventLoop* loop, StreamIo downstream,
                                        const Destination& upstream, Options options,
                                        ExchangeHooks hooks, absl::string_view already_read = {});
  static std::shared_ptr<H2Proxy> Start(EventLoop* loop, lib::UniqueFd downstream,
                                        const Destination& upstream, Options options,
                                        ExchangeHooks hooks, absl::string_view already_read = {}) {
    return Start(loop, StreamIo(std::move(downstream)), upstream, options, std::move(hooks),
                 already_read);
  }
  ~H2Proxy();
  H2Proxy(const H2Proxy&) = delete;
  H2Proxy& operator=(const H2Proxy&) = delete;

  size_t upstream_connections() const { return ups_.size(); }

 private:
  // A socket with its HTTP/2 session: the pod's (server), or one upstream's.
  struct Conn final : EventLoop::Watcher {
    H2Proxy* proxy = nullptr;
    bool downstream = false;
    Destination to;
    StreamIo io;
    std::unique_ptr<MessageSession> session;
    ByteBuffer out;
    bool connecting = false;
    bool gone = false;
    uint64_t serial = 0;  // which connection a timer was set for
    int requests = 0;     // streams submitted on it
    // Upstream: its streams, to the pod's stream each answers.
    std::map<int32_t, int32_t> exchanges;
    void OnEvents(uint32_t events) override { proxy->OnEvents(*this, events); }
  };
  // One request/response: the pod's stream and where it went.
  struct Exchange {
    int32_t id = 0;
    Conn* up = nullptr;
    int32_t up_id = -1;
    ExchangeVerdict rules;
    ExchangeRecord record;
    bool local = false;
    bool request_ended = false, response_started = false, response_ended = false;
    H2Headers request_trailers, response_trailers;
    // The head sent upstream and the body bytes sent so far, kept to send
    // again (retries) while the body stays within kMaxReplay and has no
    // trailers; `last_endpoint` the last attempt's.
    H2Headers replay;
    ByteBuffer replay_body;
    bool replayable = false, refused_retried = false;
    // Between attempts: body bytes that arrive wait in to_up.
    bool retrying = false;
    // The front of to_up that is the replayed body: sent again, but the
    // client's window was opened for it the first time already.
    size_t uncredited = 0;
    int last_endpoint = -1;
    ByteBuffer to_up, to_down;  // body bytes the other session did not take yet
    std::chrono::steady_clock::time_point started, attempt_started;
    std::chrono::steady_clock::time_point active;  // last head or body moved, either way
    EventLoop::TimerId timer = 0;
  };

  H2Proxy(EventLoop* loop, const Destination& upstream, Options options, ExchangeHooks hooks);
  bool Init(StreamIo downstream, absl::string_view already_read);
  // A request body kept for a retry at most this big (as H1Proxy's).
  static constexpr size_t kMaxReplay = 64 * 1024;
  // The body bytes sent upstream for the first time are kept for a retry,
  // or all of it let go once it is too big.
  void KeepForReplay(Exchange& ex, absl::string_view sent);
  void OnEvents(Conn& c, uint32_t events);
  // Moves every session's output to its socket, closes what is over.
  void Pump();
  bool Flush(Conn& c);
  void UpdateInterest(Conn& c);
  void Finish();

  // The pod's side.
  void OnRequestHead(int32_t id, H2Headers& headers, bool end);
  void OnRequestData(int32_t id, absl::string_view data);
  void OnRequestEnd(int32_t id);
  void OnDownClose(int32_t id, uint32_t code);
  void OnDownSpace(int32_t id);
  // The upstreams' side.
  void OnResponseHead(Conn* up, int32_t up_id, H2Headers& headers, bool end);
  void OnResponseData(Conn* up, int32_t up_id, absl::string_view data);
  void OnResponseEnd(Conn* up, int32_t up_id);
  void OnUpClose(Conn* up, int32_t up_id, uint32_t code);
  void OnUpSpace(Conn* up, int32_t up_id);
  void UpConnFailed(Conn* up, const std::string& why);
  // h2_retry.cc. The attempt failed before any of its response reached
  // the client (`why`: what failed; `refused`: REFUSED_STREAM): true if it
  // was sent again. The caller has let go of the failed upstream stream.
  // The resubmit itself waits for the end of the current batch
  // (RunRetries): a failure is often seen inside Pump's walk over ups_,
  // which making or renaming an upstream connection would break.
  bool Retry(Exchange& ex, bool allowed_for_failure, bool refused);
  void RunRetries();
  void QueueRetry(Exchange& ex, const Destination& next, int endpoint);
  // Whether it goes again, and where (the budget is asked here).
  bool PickRetry(Exchange& ex, bool allowed_for_failure, bool refused, Destination* next,
                 int* endpoint);
  // Sends it again to `next`; if that fails, the next retry if any.
  bool Resubmit(Exchange& ex, const Destination& next, int endpoint);
  // Sends ex.replay on a new stream of the upstream at `to`; false (and
  // *why) if it could not: no connection, no stream.
  bool SubmitUpstream(Exchange& ex, const Destination& to, std::string* why);
  void ArmResponseTimer(Exchange& ex);

  // An HTTP/1.1 side's limits (h1_session.h): the parser's, and HTTP/2's
  // stream window and send buffer for what HTTP/1.1 holds unpassed.
  H1SessionLimits H1Limits() const;
  // Idle HTTP/1.1 upstream connections kept per address (more are shut).
  static constexpr size_t kMaxIdleHttp1Upstreams = 4;
  void TrimIdleHttp1Upstreams();
  Exchange* Find(int32_t id);
  Exchange* FindUp(Conn* up, int32_t up_id);
  Conn* UpstreamFor(const Destination& to);
  void AnswerLocally(Exchange& ex, int status, const std::string& reason);
  void EndAttempt(Exchange& ex, bool failure, int status);
  // The exchange leaves its upstream stream (over, reset, timed out): what
  // it still holds of the response is credited to the upstream's window.
  void LetGoOfUpstream(Exchange& ex);
  // Request body that will not go upstream: credited back to the client.
  void DropRequestBody(Exchange& ex);
  void MoveBody(Exchange& ex, bool to_up);
  void ArmIdle();
  // Every stream_idle_timeout / 2 while streams are open: resets those
  // idle past the timeout.
  void ArmStreamSweep();
  void SweepStreams();

  EventLoop* loop_;
  Destination upstream_addr_;
  Options options_;
  ExchangeHooks hooks_;
  Conn down_;
  std::map<std::string, std::unique_ptr<Conn>> ups_;  // by "address:port"
  std::map<int32_t, Exchange> exchanges_;
  struct PendingRetry {
    int32_t id;
    Destination next;
    int endpoint;
  };
  std::vector<PendingRetry> pending_retries_;
  EventLoop::TimerId idle_timer_ = 0, sweep_timer_ = 0;
  bool done_ = false;
  bool pumping_ = false;
  uint64_t next_serial_ = 0;
};

}  // namespace shunt::proxy::http
