// One pod's HTTP/1.x connection through the L7 layer (issue 17): requests
// are read one at a time (H1Parser), judged (HTTPRouteGroup policy through
// `judge`), answered by the proxy itself when denied (403, the connection
// stays open for the next request) or forwarded to the upstream, whose
// response comes back before the next request is read — pipelined
// requests wait in order. Bodies stream both ways, re-framed per leg
// (chunked where the length is not known), never buffered whole; reading
// a side stops while what it sends is not taken. An Upgrade (WebSocket)
// becomes a byte relay once the upstream says 101. Each forwarded request
// carries its trace on with a span of this hop's (trace_context.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/lib/unique_fd.h"
#include "proxy/common/byte_buffer.h"
#include "proxy/common/object_pool.h"
#include "proxy/http/exchange_hooks.h"
#include "proxy/http/h1_parser.h"
#include "proxy/http/h1_writer.h"
#include "proxy/http/route_matcher.h"
#include "proxy/http/trace_context.h"
#include "proxy/http/upstream_pool.h"
#include "proxy/loop/event_loop.h"
#include "proxy/loop/stream_io.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy::http {

class H1Proxy : public std::enable_shared_from_this<H1Proxy> {
  struct Token {
    explicit Token() = default;
  };

 public:
  using Verdict = ExchangeVerdict;
  using Attempt = ExchangeAttempt;
  using Record = ExchangeRecord;
  using Hooks = ExchangeHooks;
  struct Options {
    H1Parser::Limits limits;
    size_t max_buffered = 1 << 20;  // per direction, before reading stops
    // A request's head must be complete this long after its first byte
    // (slow clients: 408 and close).
    int head_timeout_ms = 10000;
    // A kept-alive connection with no request in flight closes after this.
    int idle_timeout_ms = 60000;
    // The upstream's response must start this long after the request's
    // head (504, the route's timeout); 0: none.
    int response_timeout_ms = 0;
    // An upstream connection must be established this long after its
    // connect() (a connect failure then: a retry, or 502); 0: the kernel's.
    int connect_timeout_ms = 0;
    // A request in flight on which no byte moves either way this long (a
    // body that stalls, an answer that never comes or is never read): 408
    // and close if the request is not all here, 504 if the answer has not
    // started, else the connection ends; 0: never.
    int stream_idle_timeout_ms = 0;
    // No HTTP: relay bytes both ways from the start (permissive mode's
    // treatment of another protocol on an L7 port).
    bool relay = false;
    // The proxy's shared idle upstream connections (upstream_pool.h): the
    // upstream connection goes there after kParkAfter without a request,
    // and when the client's connection ends between requests; a request
    // with no upstream connection takes one from there first. Shared
    // between client connections of the same client address only
    // (`pool_source`, the client pod's: it must outlive the proxy, as
    // the L7 flow its Hooks::owner keeps). Null: each connection keeps
    // its own (and up to kMaxIdle to other endpoints).
    UpstreamPool* upstream_pool = nullptr;
    const Destination* pool_source = nullptr;
  };
  static constexpr std::chrono::milliseconds kParkAfter{1000};

  // `already_read`: what was read from `downstream` before (protocol
  // detection); it is handled first.
  // `downstream`: the client's connection, a socket or an in-process
  // channel (a tunnel stream ending on this node).
  static std::shared_ptr<H1Proxy> Start(EventLoop* loop, StreamIo downstream,
                                        const Destination& upstream, Options options, Hooks hooks,
                                        absl::string_view already_read = {});
  static std::shared_ptr<H1Proxy> Start(EventLoop* loop, lib::UniqueFd downstream,
                                        const Destination& upstream, Options options, Hooks hooks,
                                        absl::string_view already_read = {}) {
    return Start(loop, StreamIo(std::move(downstream)), upstream, options, std::move(hooks),
                 already_read);
  }
  // Start's make_shared only (no one outside can name a Token).
  H1Proxy(Token, EventLoop* loop, const Destination& upstream, Options options, Hooks hooks);
  ~H1Proxy();
  H1Proxy(const H1Proxy&) = delete;
  H1Proxy& operator=(const H1Proxy&) = delete;

 private:
  struct Side : EventLoop::Watcher {
    H1Proxy* proxy = nullptr;
    bool downstream = false;
    StreamIo io;
    ByteBuffer in, out;
    bool eof = false;  // read its FIN
    // A relay: the other side's FIN is passed on once `out` is written.
    bool shut_after_flush = false;
    void OnEvents(uint32_t events) override { proxy->OnEvents(*this, events); }
  };
  struct Requests : H1Parser::Handler {
    explicit Requests(H1Proxy* p) : proxy(p) {}
    H1Proxy* proxy;
    void OnHead(H1Head& h) override { proxy->OnRequestHead(h); }
    void OnBody(absl::string_view p) override { proxy->OnRequestBody(p); }
    void OnMessageEnd() override { proxy->OnRequestEnd(); }
  };
  struct Responses : H1Parser::Handler {
    explicit Responses(H1Proxy* p) : proxy(p) {}
    H1Proxy* proxy;
    void OnHead(H1Head& h) override { proxy->OnResponseHead(h); }
    void OnBody(absl::string_view p) override { proxy->OnResponseBody(p); }
    void OnMessageEnd() override { proxy->OnResponseEnd(); }
  };

  // An upstream connection kept while requests go to other endpoints;
  // watched, so that one its server closes (or writes to unasked) goes.
  struct Idle final : EventLoop::Watcher {
    H1Proxy* proxy = nullptr;
    Destination to;
    lib::UniqueFd fd;
    bool via_pair = false;
    void OnEvents(uint32_t) override { proxy->DropIdle(this); }
  };
  static constexpr size_t kMaxIdle = 4;
  void DropIdle(Idle* idle);

  void OnEvents(Side& s, uint32_t events);
  bool ReadInto(Side& s);
  bool Flush(Side& s);
  void UpdateInterest();
  void ParseRequests();
  void ParseResponses();
  bool ConnectUpstream();

  void OnRequestHead(H1Head& h);
  void OnRequestBody(absl::string_view piece);
  void OnRequestEnd();
  void OnResponseHead(H1Head& h);
  void OnResponseBody(absl::string_view piece);
  void OnResponseEnd();
  // The proxy answers the current request itself; its body is discarded.
  // `route`: the route a denial names ("REASON; route=ROUTE").
  void AnswerLocally(int status, absl::string_view reason, bool close,
                     absl::string_view route = {});
  void FinishExchange();
  // One timer for the state the connection is in.
  // kPark: idle, the upstream connection to be parked (then kIdle).
  enum class Wait { kNone, kPark, kIdle, kHead, kResponse };
  // `ms` < 0: the wait's own timeout.
  void Arm(Wait what, int ms = -1);
  // Between requests: the upstream connection goes to the shared pool, if
  // there is one and the connection is clean.
  void ParkUpstream();
  void StartTimer(EventLoop::Clock::time_point at);
  void OnTimer();
  void OnTimeout(Wait what);
  void CloseUpstream();
  // The next request goes to `to`: the current upstream connection, idle
  // between requests, is kept for its endpoint (up to kMaxIdle), and one
  // kept for `to` is taken back (else ConnectUpstream makes one).
  void SwitchUpstream(const Destination& to);
  void Finish();
  // Attempts: the end of one (told to Hooks.on_attempt), and a retry of
  // the request after a failure of kind `on` (false: none is possible).
  void EndAttempt(bool failure, int status);
  bool TryRetry(bool allowed_for_failure);
  void StartRetry();
  // The upstream could not be reached: a retry elsewhere, or 502.
  void UpstreamConnectFailed(const std::string& why);
  // What the request sent upstream since `from` (an offset in up_.out) is
  // kept for a retry, while the request stays small enough.
  void KeepForReplay(size_t from);

  EventLoop* loop_;
  Destination upstream_addr_;
  Options options_;
  Hooks hooks_;
  Side down_, up_;
  std::vector<std::unique_ptr<Idle>> idle_;  // oldest first
  Requests requests_handler_;
  Responses responses_handler_;
  H1Parser requests_, responses_;
  bool up_connecting_ = false;
  // The upstream is a tunnel stream (connected by open_upstream) that has
  // sent nothing yet: its end before any byte is the peer node refusing
  // the stream, a connect failure.
  bool up_via_pair_ = false, up_got_bytes_ = false;
  bool upgraded_ = false;
  bool closing_ = false;  // close downstream once its output is written
  bool done_ = false;
  // The exchange in flight.
  bool in_exchange_ = false;
  bool local_ = false;  // answered by the proxy; the request body is dropped
  bool request_done_ = false, response_done_ = false;
  bool interim_ = false;  // the response read is a 1xx before the final one
  bool head_request_ = false;
  bool request_upgrade_ = false;
  bool upgrade_forwarded_ = false;  // the Upgrade went upstream (not h2c)
  // The upstream said Connection: close, or sent what nobody asked for:
  // closed once its parser is out of its callbacks.
  bool close_upstream_ = false;
  bool client_keep_alive_ = true;
  Framing request_framing_ = Framing::kNone, response_framing_ = Framing::kNone;
  bool response_started_ = false;  // a head went downstream
  // What a request in flight needs and an idle connection does not keep
  // (object_pool.h): taken on first use, given back by ShedIdleMemory.
  struct ExchangeMemory {
    Record record;
    RequestView view;  // the request as the judge sees it
    HopSpan span;      // this hop's span of the current request
    // The request's verdict: its endpoint and retry rules for each attempt.
    Verdict verdict;
    // Its bytes kept for a retry (while small and idempotent), and where
    // a retry decided while a failed response is read goes.
    ByteBuffer replay;
    Destination retry_to;
    int retry_endpoint = -1;
    std::chrono::steady_clock::time_point started, attempt_started;
    void Reset() {
      record.Reset();
      view.headers.clear();
      verdict.Reset();
      replay.Release();  // its block back to the thread's buffer pool
      retry_endpoint = -1;
    }
    bool KeepInPool() const { return true; }
  };
  Pooled<ExchangeMemory> exchange_;
  ExchangeMemory& Mem() {
    if (!exchange_) exchange_ = TakePooled<ExchangeMemory>();
    return *exchange_;
  }
  // Between requests, nothing more read: the exchange's memory, the
  // parsers' heads and the replay buffer go back to the thread's pools.
  void ShedIdleMemory();
  // The current request's attempts: its verdict's endpoint and retry
  // rules, its bytes kept for a retry (while small and idempotent), and a
  // retry decided while its failed response is being read.
  static constexpr size_t kMaxReplay = 64 * 1024;
  int response_timeout_ms_ = 0;  // the current request's (its verdict's, or Options')
  bool replayable_ = false;
  bool retry_pending_ = false;
  bool discarding_ = false;  // the response read is a failure being retried
  // One timer at a time, due at or before `deadline_` (what is waited for
  // times out then): a later deadline leaves it, and it arms itself again
  // for what is left when it fires early. So a request that moves the
  // deadline costs no timer (and no allocation).
  Wait waiting_ = Wait::kNone;
  EventLoop::TimerId timer_ = 0;
  EventLoop::Clock::time_point deadline_{}, timer_due_{};
  // While up_connecting_: when the connect fails (Options.connect_timeout_ms).
  EventLoop::Clock::time_point connect_deadline_{};
  // While in an exchange: when a byte last moved (Options.stream_idle_timeout_ms).
  EventLoop::Clock::time_point last_moved_{};
  void OnStall();
};

}  // namespace shunt::proxy::http
