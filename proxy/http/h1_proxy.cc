#include "proxy/http/h1_proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "proxy/common/socket_ops.h"

namespace shunt::proxy::http {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

bool StatusHasNoBody(int status) { return status == 204 || status == 304 || status < 200; }

// The request's Upgrade names h2c among its protocols.
bool AsksForH2c(const H1Head& h) {
  for (const auto& [n, v] : h.headers) {
    if (!absl::EqualsIgnoreCase(n, "upgrade")) continue;
    for (absl::string_view token : absl::StrSplit(v, ','))
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(token), "h2c")) return true;
  }
  return false;
}

// Span ids: one generator per thread, seeded once (not per connection).
absl::BitGen& Bits() {
  thread_local absl::BitGen bits;
  return bits;
}

}  // namespace

std::shared_ptr<H1Proxy> H1Proxy::Start(EventLoop* loop, StreamIo downstream,
                                        const Destination& upstream, Options options, Hooks hooks,
                                        absl::string_view already_read) {
  // One allocation for the proxy and its reference counts.
  auto p = std::make_shared<H1Proxy>(Token{}, loop, upstream, options, std::move(hooks));
  p->down_.io = std::move(downstream);
  if (!p->down_.io.Watch(*loop, &p->down_, EPOLLIN).ok()) {
    p->down_.io.Close(false);
    return nullptr;
  }
  if (options.relay) {
    // Bytes both ways from the start, as after a 101.
    p->upgraded_ = true;
    p->up_.out.Append(already_read);
    if (!p->ConnectUpstream()) {
      p->Finish();
      return nullptr;
    }
    p->UpdateInterest();
    return p;
  }
  p->Arm(Wait::kIdle);
  if (!already_read.empty()) {
    p->down_.in.Append(already_read);
    // Not from inside Start: the caller holds the proxy first.
    loop->Later([weak = p->weak_from_this()] {
      if (auto q = weak.lock(); q && !q->done_) {
        q->ParseRequests();
        if (q->done_) return;
        // As after a read: all of it taken, the block goes back to the
        // thread's pool (else every idle connection would keep 4 KiB).
        if (q->down_.in.empty()) q->down_.in.Release();
        q->ShedIdleMemory();
        q->UpdateInterest();
      }
    });
  }
  return p;
}

H1Proxy::H1Proxy(Token, EventLoop* loop, const Destination& upstream, Options options, Hooks hooks)
    : loop_(loop),
      upstream_addr_(upstream),
      options_(options),
      hooks_(std::move(hooks)),
      requests_handler_(this),
      responses_handler_(this),
      requests_(H1Parser::Kind::kRequest, options.limits, &requests_handler_),
      responses_(H1Parser::Kind::kResponse, options.limits, &responses_handler_) {
  down_.proxy = up_.proxy = this;
  down_.downstream = true;
}

H1Proxy::~H1Proxy() {
  if (timer_ != 0) loop_->Cancel(timer_);
  for (auto& i : idle_) loop_->Unwatch(i->fd.get());
  for (Side* s : {&down_, &up_}) s->io.Unwatch(*loop_);
}

void H1Proxy::OnEvents(Side& s, uint32_t events) {
  auto self = shared_from_this();
  if (done_) return;
  if (&s == &up_ && up_connecting_) {
    const int err = ConnectResult(up_.io.fd());
    up_connecting_ = false;
    if (err != 0) {
      if (upgraded_) return Finish();  // a relay with nowhere to go
      UpstreamConnectFailed(absl::StrCat("upstream-connect-failed: ", strerror(err)));
      if (done_ || !Flush(up_) || !Flush(down_)) return;
      UpdateInterest();
      return;
    }
    // The balancer learns the endpoint's answer time, not the handshake's
    // (paid once per connection, and by the first request only).
    if (exchange_) exchange_->attempt_started = loop_->Now();
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && !s.out.empty() && !Flush(s)) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    if (!ReadInto(s)) return;
    if (upgraded_) {
      Side& other = &s == &down_ ? up_ : down_;
      other.out.Append(s.in.view());
      s.in.clear();
      // The FIN after the bytes before it (Flush sends it once they are out).
      if (s.eof) other.shut_after_flush = true;
      if (!Flush(other)) return;
      if (down_.eof && up_.eof && down_.out.empty() && up_.out.empty()) return Finish();
    } else if (&s == &down_) {
      ParseRequests();
    } else {
      ParseResponses();
    }
    // All of it taken: the room goes back to the thread's pool (an idle
    // connection holds no buffer).
    if (!done_ && s.in.empty()) s.in.Release();
  }
  ShedIdleMemory();
  if (!done_) UpdateInterest();
}

bool H1Proxy::ReadInto(Side& s) {
  for (int i = 0; i < 4 && !s.eof; ++i) {
    char* space = s.in.Reserve(kReadChunk);
    const ssize_t n = s.io.Recv(space, kReadChunk);
    if (n > 0) {
      s.in.Commit(static_cast<size_t>(n));
      if (&s == &up_) up_got_bytes_ = true;
      if (in_exchange_) last_moved_ = loop_->Now();
      if (static_cast<size_t>(n) < kReadChunk || s.in.size() >= options_.max_buffered) break;
      continue;
    }
    if (n == 0) {
      s.eof = true;
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
    // The upstream reset between messages, or before its answer: as if it
    // had closed (a 502, or a retry). A reset once the answer is under way
    // cuts the client's connection too, there.
    if (&s == &up_ && !upgraded_) {
      s.eof = true;
      break;
    }
    Finish();  // a reset: the other side's connection goes too
    return false;
  }
  return true;
}

bool H1Proxy::Flush(Side& s) {
  while (!s.out.empty() && s.io.valid() && !(&s == &up_ && up_connecting_)) {
    const ssize_t n = s.io.Send(s.out.data(), s.out.size());
    if (n > 0) {
      s.out.Consume(static_cast<size_t>(n));
      if (in_exchange_) last_moved_ = loop_->Now();
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    if (&s == &up_ && !upgraded_) {
      // A kept-alive upstream that went away meanwhile: as one that
      // refused (another attempt, or 502); the client's connection stays.
      // (A tunnel stream the peer node refused before it opened: a connect.)
      UpstreamConnectFailed(absl::StrCat(
          errno == ECONNREFUSED ? "upstream-connect-failed: " : "upstream-send-failed: ",
          strerror(errno)));
      return !done_;
    }
    Finish();
    return false;
  }
  if (s.out.empty() && s.shut_after_flush && s.io.valid()) {
    s.shut_after_flush = false;
    s.io.ShutdownWrite();
  }
  if (s.out.empty()) s.out.Release();
  // Closing: once the last exchange is over and its bytes are out, or
  // the proxy's own final answer is (a denial with Connection: close: the
  // rest of the request's body is not waited for, nor read).
  if (&s == &down_ && closing_ && down_.out.empty() &&
      (!in_exchange_ || (local_ && response_done_))) {
    Finish();
    return false;
  }
  return true;
}

void H1Proxy::UpdateInterest() {
  if (done_) return;
  const size_t max = options_.max_buffered;
  // Downstream: read while what it sends upstream is taken and the parser
  // keeps up (pipelined requests wait in `in`, bounded).
  uint32_t down = 0;
  if (!down_.eof && !closing_ && down_.in.size() < max && up_.out.size() < max) down |= EPOLLIN;
  if (!down_.out.empty()) down |= EPOLLOUT;
  down_.io.Interest(*loop_, down);
  if (!up_.io.valid()) return;
  uint32_t up = 0;
  if (up_connecting_) {
    up = EPOLLOUT;
  } else {
    if (!up_.eof && up_.in.size() < max && down_.out.size() < max) up |= EPOLLIN;
    if (!up_.out.empty()) up |= EPOLLOUT;
  }
  up_.io.Interest(*loop_, up);
}

void H1Proxy::ParseRequests() {
  while (!done_ && !down_.in.empty() && !requests_.paused() && !upgraded_) {
    auto n = requests_.Feed(down_.in.view());
    if (!n.ok()) {
      const std::string why(n.status().message());
      if (in_exchange_ && !local_ && request_done_ == false && response_started_) {
        Finish();  // mid-body, a response under way: nothing clean to say
        return;
      }
      CloseUpstream();
      Mem().record = Record{.reason = why};
      AnswerLocally(requests_.error_status(), why, /*close=*/true);
      if (hooks_.on_request) hooks_.on_request(Mem().record);
      in_exchange_ = false;
      Flush(down_);
      return;
    }
    down_.in.Consume(*n);
    if (*n == 0) break;
  }
  // Part of a request head is here: it has a while to complete.
  if (!done_ && !in_exchange_ && !requests_.idle() && waiting_ != Wait::kHead) Arm(Wait::kHead);
  if (down_.eof && !done_ && !upgraded_) {
    if (in_exchange_ && !request_done_) {
      (void)requests_.FeedEof();
      Finish();  // cut off mid-request
      return;
    }
    // The client is done sending: what it is owed goes out, then the end.
    if (!in_exchange_) closing_ = true;
  }
  if (Flush(up_)) Flush(down_);
}

void H1Proxy::ParseResponses() {
  bool junk = false;
  while (!done_ && !up_.in.empty() && !upgraded_) {
    // Stopped after a message (an interim one, or the final one).
    if (responses_.paused()) responses_.Resume();
    if (!in_exchange_ || local_ || response_done_) {
      junk = true;  // bytes nobody asked for: not reusable
      break;
    }
    auto n = responses_.Feed(up_.in.view());
    if (!n.ok() && discarding_) {
      StartRetry();  // the failed answer was bad as well: it is dropped all the same
      return;
    }
    if (!n.ok()) {
      CloseUpstream();
      if (!response_started_) {
        EndAttempt(true, 0);
        AnswerLocally(502, absl::StrCat("bad-upstream-response: ", n.status().message()), true);
        response_done_ = true;
        FinishExchange();
        Flush(down_);
      } else {
        Finish();
      }
      return;
    }
    up_.in.Consume(*n);
    if (*n == 0 || retry_pending_) break;
  }
  if (retry_pending_) {
    StartRetry();  // the failed answer is dropped with its connection
    return;
  }
  if (responses_.paused() && !in_exchange_) responses_.Resume();
  if (upgraded_) {
    // After the 101, both ways are the upgraded protocol's bytes.
    down_.out.Append(up_.in.view());
    up_.in.clear();
    up_.out.Append(down_.in.view());
    down_.in.clear();
    if (!Flush(up_)) return;
  }
  if (up_.eof && !done_ && !upgraded_ && in_exchange_ && !local_ && !response_done_) {
    // A response delimited by the connection's end ends here; any other
    // is cut short.
    (void)responses_.FeedEof();
    if (retry_pending_) {
      StartRetry();
      return;
    }
    if (!response_done_) {
      CloseUpstream();
      if (response_started_) return Finish();
      if (up_via_pair_ && !up_got_bytes_) {
        // The other node's proxy refused the stream (pod gone, policy).
        UpstreamConnectFailed("upstream-connect-failed: refused by the destination's node");
        Flush(down_);
        return;
      }
      EndAttempt(true, 0);
      if (request_done_ && TryRetry(Mem().verdict.retry_on_reset)) {
        StartRetry();
        return;
      }
      AnswerLocally(502, "upstream-closed", false);
      response_done_ = true;
      FinishExchange();
    }
  }
  // Connection: close from the upstream takes effect once its response is over.
  if (junk || (close_upstream_ && (response_done_ || !in_exchange_)) || (up_.eof && !upgraded_))
    CloseUpstream();
  Flush(down_);
}

bool H1Proxy::ConnectUpstream() {
  if (up_.io.valid()) return true;
  if (options_.upstream_pool && options_.pool_source) {
    UpstreamPool::Taken kept = options_.upstream_pool->Take(*options_.pool_source, upstream_addr_);
    if (kept.fd.valid() && loop_->Watch(kept.fd.get(), &up_, 0).ok()) {
      up_.io = StreamIo(std::move(kept.fd));
      up_via_pair_ = kept.via_pair;
      up_got_bytes_ = true;  // it has answered before
      up_.eof = false;
      up_connecting_ = false;
      return true;
    }
  }
  socklen_t len = 0;
  const sockaddr_storage ss = ToSockaddr(upstream_addr_, &len);
  bool connected = false;
  up_.io = hooks_.open_upstream
               ? hooks_.open_upstream(upstream_addr_, &connected)
               : StreamIo(lib::UniqueFd(
                     socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)));
  if (!up_.io.valid()) return false;
  up_via_pair_ = connected;
  up_got_bytes_ = false;
  if (!connected) SetNoDelay(up_.io.fd());
  if (!up_.io.Watch(*loop_, &up_, 0).ok() ||
      (!connected && connect(up_.io.fd(), reinterpret_cast<const sockaddr*>(&ss), len) != 0 &&
       errno != EINPROGRESS)) {
    CloseUpstream();
    return false;
  }
  up_.eof = false;
  up_connecting_ = !connected;
  connect_deadline_ = {};
  if (up_connecting_ && options_.connect_timeout_ms > 0) {
    connect_deadline_ = loop_->Now() + std::chrono::milliseconds(options_.connect_timeout_ms);
    if (timer_ == 0 || timer_due_ > connect_deadline_) StartTimer(connect_deadline_);
  }
  return true;
}

void H1Proxy::OnRequestHead(H1Head& h) {
  Arm(Wait::kNone);  // the head is complete; the idle wait is over
  in_exchange_ = true;
  local_ = false;
  request_done_ = response_done_ = response_started_ = interim_ = false;
  const auto now = loop_->Now();
  ExchangeMemory& mem = Mem();
  mem.started = mem.attempt_started = now;
  Record& record = mem.record;
  if (options_.stream_idle_timeout_ms > 0) {
    last_moved_ = now;
    const auto due = now + std::chrono::milliseconds(options_.stream_idle_timeout_ms);
    if (timer_ == 0 || timer_due_ > due) StartTimer(due);  // else it fires first anyway
  }
  record.Reset();  // its strings keep what they hold for the next request
  record.method = h.method;
  head_request_ = h.method == "HEAD";
  request_upgrade_ = h.upgrade;
  // h2c (RFC 7540 3.2; RFC 9113 dropped it): after its 101 the connection
  // would carry HTTP/2 requests that no route judges. Declined as a server
  // that does not take it declines: the request goes on without its
  // Upgrade and is answered over HTTP/1.1 (the connection then ends:
  // http-parser reads nothing after an upgrade request).
  if (h.upgrade && AsksForH2c(h)) h.upgrade = false;
  upgrade_forwarded_ = h.upgrade;
  client_keep_alive_ = h.keep_alive;
  // Kept across requests: its header list grows once.
  RequestView& view = mem.view;
  view.method = h.method;
  view.path = absl::string_view(h.target).substr(0, h.target.find('?'));
  view.headers.clear();
  for (const auto& [n, v] : h.headers) view.headers.emplace_back(n, v);
  // Judged into the kept verdict: its strings keep their memory.
  Verdict& v = mem.verdict;
  v.Reset();
  if (hooks_.judge) hooks_.judge(h, view, &v);
  record.route = v.route;
  record.reason = v.reason;  // allowed with a reason: permissive mode's would-deny
  record.state = v.state;
  if (!v.reason.empty()) record.path.assign(view.path.data(), view.path.size());
  if (!v.allow) {
    // No attempt: nothing to tell the balancer, nothing to retry.
    v.endpoint = -1;
    v.retries = 0;
    // The client learns why, and which route was not granted.
    AnswerLocally(v.status, v.reason, !client_keep_alive_, v.route);
    response_done_ = true;
    return;
  }
  if (v.upstream && !(*v.upstream == upstream_addr_)) SwitchUpstream(*v.upstream);
  // Kept for a retry while idempotent and small enough to hold.
  mem.replay.clear();
  replayable_ = v.retries > 0 && Idempotent(h.method) && !h.upgrade &&
                (h.content_length < 0 || static_cast<size_t>(h.content_length) <= kMaxReplay);
  retry_pending_ = discarding_ = false;
  response_timeout_ms_ = v.timeout_ms > 0 ? v.timeout_ms : options_.response_timeout_ms;
  Arm(response_timeout_ms_ > 0 ? Wait::kResponse : Wait::kNone);
  // The trace goes on with a span of this hop's (W3C, and B3 if it came so).
  StartHop(h.headers, Bits(), &mem.span);
  Propagate(mem.span, &h.headers, &h.spare);
  record.trace_id = mem.span.trace_id;
  record.span_id = mem.span.span_id;
  record.parent_id = mem.span.parent_id;
  request_framing_ = h.chunked               ? Framing::kChunked
                     : h.content_length >= 0 ? Framing::kLength
                                             : Framing::kNone;
  const size_t before = up_.out.size();
  WriteRequestHead(h, {}, request_framing_, &up_.out);
  if (replayable_) mem.replay.Append(up_.out.view().substr(before));
  record.upstream = upstream_addr_;
  if (!ConnectUpstream()) return UpstreamConnectFailed("upstream-connect-failed");
  if (head_request_) responses_.ExpectNoBody();
}

void H1Proxy::OnRequestBody(absl::string_view piece) {
  if (local_) return;
  const size_t before = up_.out.size();
  if (request_framing_ == Framing::kChunked) {
    WriteChunk(piece, &up_.out);
  } else {
    up_.out.Append(piece);
  }
  KeepForReplay(before);
}

void H1Proxy::OnRequestEnd() {
  request_done_ = true;
  const size_t before = up_.out.size();
  if (!local_ && request_framing_ == Framing::kChunked) WriteLastChunk(&up_.out);
  if (!local_) KeepForReplay(before);
  FinishExchange();
}

void H1Proxy::KeepForReplay(size_t from) {
  if (!replayable_) return;
  const absl::string_view added = up_.out.view().substr(from);
  if (Mem().replay.size() + added.size() > kMaxReplay) {
    replayable_ = false;  // too big to hold: this request is not retried
    Mem().replay.Release();
    return;
  }
  Mem().replay.Append(added);
}

void H1Proxy::OnResponseHead(H1Head& h) {
  if (h.status >= 100 && h.status < 200 && h.status != 101) {
    interim_ = true;  // 100 Continue and the like: passed on, the final one follows
    WriteResponseHead(h, {}, Framing::kNone, false, &down_.out);
    return;
  }
  interim_ = false;
  // The attempt's outcome: a 5xx fails it (as retry-on counts it), and
  // may be retried before any of it reaches the client.
  const bool failed = h.status >= 500 && Mem().verdict.retry_on_5xx;
  EndAttempt(failed, h.status);
  if (failed && request_done_ && TryRetry(true)) {
    retry_pending_ = discarding_ = true;
    return;
  }
  response_started_ = true;
  Mem().record.status = h.status;
  if (waiting_ == Wait::kResponse) Arm(Wait::kNone);
  if (h.status == 101 && !upgrade_forwarded_) {
    // A switch nobody asked the server for (or one the proxy declined):
    // what follows would not be HTTP this proxy judges. Its connection
    // goes once the parser is out of this call (ParseResponses: junk).
    close_upstream_ = true;
    AnswerLocally(502, "bad-upstream-response: 101 without a forwarded upgrade", true);
    response_done_ = true;
    FinishExchange();
    return;
  }
  if (h.status == 101) {
    WriteResponseHead(h, {}, Framing::kNone, false, &down_.out);
    upgraded_ = true;
    response_done_ = true;
    return;
  }
  if (!h.keep_alive) close_upstream_ = true;
  // http-parser reads nothing after an upgrade request: the connection
  // ends with this response if the upstream did not switch.
  if (request_upgrade_) client_keep_alive_ = false;
  if (head_request_ || StatusHasNoBody(h.status)) {
    response_framing_ = Framing::kNone;
  } else if (h.chunked || h.content_length < 0) {
    response_framing_ = Framing::kChunked;  // close-delimited upstream, kept-alive client
  } else {
    response_framing_ = Framing::kLength;
  }
  const Framing head_framing =
      head_request_ && h.content_length >= 0 ? Framing::kLength : response_framing_;
  if (!client_keep_alive_) closing_ = true;
  WriteResponseHead(h, {}, head_framing, !client_keep_alive_, &down_.out);
}

void H1Proxy::OnResponseBody(absl::string_view piece) {
  if (discarding_) return;
  if (response_framing_ == Framing::kChunked) {
    WriteChunk(piece, &down_.out);
  } else {
    down_.out.Append(piece);
  }
}

void H1Proxy::OnResponseEnd() {
  if (discarding_) return;
  if (interim_) {
    interim_ = false;  // the final response follows
    return;
  }
  if (upgraded_) {
    FinishExchange();
    return;
  }
  if (response_framing_ == Framing::kChunked) WriteLastChunk(&down_.out);
  response_done_ = true;
  FinishExchange();
}

void H1Proxy::AnswerLocally(int status, absl::string_view reason, bool close,
                            absl::string_view route) {
  local_ = true;
  Mem().record.local = true;
  Mem().record.status = status;
  if (Mem().record.reason.empty()) Mem().record.reason.assign(reason.data(), reason.size());
  WriteLocalAnswer(status, status == 403 ? "x-shunt-denied" : "x-shunt-error", reason, route, close,
                   &down_.out);
  if (close) closing_ = true;
}

void H1Proxy::FinishExchange() {
  if (!in_exchange_ || !request_done_ || !response_done_) return;
  in_exchange_ = false;
  Mem().record.micros =
      std::chrono::duration_cast<std::chrono::microseconds>(loop_->Now() - Mem().started).count();
  if (hooks_.on_request) hooks_.on_request(Mem().record);
  Arm(upgraded_ ? Wait::kNone : Wait::kIdle);
  if (down_.eof) closing_ = true;
  if (closing_ || upgraded_) return;  // flushed by the caller
  // The next pipelined request, if it is here already: after the parsers
  // are out of their callbacks (a parser pauses after each message).
  loop_->Later(weak_from_this(), [](void* owner) {
    auto* p = static_cast<H1Proxy*>(owner);
    if (p->done_) return;
    p->requests_.Resume();
    p->ParseRequests();
    p->ShedIdleMemory();
    p->UpdateInterest();
  });
}

void H1Proxy::ShedIdleMemory() {
  if (done_ || in_exchange_ || upgraded_ || !down_.in.empty()) return;
  requests_.ReleaseHead();   // kept while a message is half read
  responses_.ReleaseHead();  // (an answer nobody asked for)
  exchange_.reset();
}

void H1Proxy::Arm(Wait what, int ms) {
  if (what == Wait::kIdle && options_.upstream_pool && up_.io.valid() &&
      options_.idle_timeout_ms > kParkAfter.count()) {
    what = Wait::kPark;  // first the upstream connection is parked
    ms = static_cast<int>(kParkAfter.count());
  }
  waiting_ = what;
  if (ms < 0) {
    ms = what == Wait::kIdle       ? options_.idle_timeout_ms
         : what == Wait::kHead     ? options_.head_timeout_ms
         : what == Wait::kResponse ? response_timeout_ms_
                                   : 0;
  }
  if (ms <= 0) {
    deadline_ = {};  // a pending timer finds nothing due
    return;
  }
  deadline_ = loop_->Now() + std::chrono::milliseconds(ms);
  if (timer_ != 0 && timer_due_ <= deadline_) return;  // fires first, then arms again
  StartTimer(deadline_);
}

void H1Proxy::StartTimer(EventLoop::Clock::time_point at) {
  if (timer_ != 0) loop_->Cancel(timer_);
  timer_due_ = at;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(at - EventLoop::Clock::now());
  // `this` alone (held inline by the std::function, no heap block): the
  // destructor cancels the timer.
  timer_ = loop_->After(std::max(left, std::chrono::milliseconds(1)), [this] {
    timer_ = 0;
    if (done_) return;
    auto self = shared_from_this();  // OnTimer may end the connection
    OnTimer();
  });
}

void H1Proxy::OnTimer() {
  const EventLoop::Clock::time_point now = EventLoop::Clock::now(), none{};
  if (up_connecting_ && connect_deadline_ != none && now >= connect_deadline_) {
    // No SYN-ACK in time (a blackholed endpoint): a connect failure, as
    // if it had been refused: another endpoint, or 502.
    connect_deadline_ = none;
    UpstreamConnectFailed("upstream-connect-timeout");
    if (done_ || !Flush(up_) || !Flush(down_)) return;
    UpdateInterest();
  }
  if (!up_connecting_) connect_deadline_ = none;
  const auto stall = std::chrono::milliseconds(options_.stream_idle_timeout_ms);
  if (in_exchange_ && !upgraded_ && stall.count() > 0 && now - last_moved_ >= stall) {
    OnStall();
    if (done_) return;
    UpdateInterest();
  }
  // What is still ahead: the wait's deadline (a timer that fired early),
  // the connect's, the stall's; the earliest. (A wait handled here arms
  // its next one itself.)
  EventLoop::Clock::time_point next = none;
  if (waiting_ != Wait::kNone && deadline_ != none) {
    if (now < deadline_) {
      next = deadline_;
    } else {
      OnTimeout(waiting_);
      if (done_) return;
      UpdateInterest();
    }
  }
  if (up_connecting_ && connect_deadline_ != none && (next == none || connect_deadline_ < next))
    next = connect_deadline_;
  if (in_exchange_ && !upgraded_ && stall.count() > 0 &&
      (next == none || last_moved_ + stall < next))
    next = last_moved_ + stall;
  if (next != none && (timer_ == 0 || timer_due_ > next)) StartTimer(next);
}

void H1Proxy::OnStall() {
  if (response_started_) return Finish();  // an answer under way: nothing clean to say
  CloseUpstream();                         // a late answer would belong to no request
  retry_pending_ = discarding_ = false;
  if (request_done_) {
    // The upstream took the whole request and said nothing.
    EndAttempt(true, 0);
    AnswerLocally(504, "upstream-idle-timeout", !client_keep_alive_);
  } else {
    // The client stopped sending its request: the rest will not come.
    EndAttempt(false, -1);
    AnswerLocally(408, "request-idle-timeout", /*close=*/true);
    request_done_ = true;
  }
  response_done_ = true;
  FinishExchange();
  Flush(down_);
}

void H1Proxy::OnTimeout(Wait what) {
  switch (what) {
    case Wait::kNone:
      return;
    case Wait::kPark:
      ParkUpstream();
      Arm(Wait::kIdle, options_.idle_timeout_ms - static_cast<int>(kParkAfter.count()));
      return;
    case Wait::kIdle:
      Finish();  // nothing in flight: a quiet close
      return;
    case Wait::kHead:
      Mem().record = Record{.reason = "request-head-timeout"};
      AnswerLocally(408, "request-head-timeout", /*close=*/true);
      if (hooks_.on_request) hooks_.on_request(Mem().record);
      in_exchange_ = false;
      Flush(down_);
      return;
    case Wait::kResponse:
      if (!in_exchange_ || response_started_ || response_done_) return;
      // The upstream is too slow: 504, and its connection goes (its late
      // answer would belong to no request). The route's time covers its
      // retries: none follows.
      EndAttempt(true, 0);
      retry_pending_ = discarding_ = false;
      CloseUpstream();
      AnswerLocally(504, "upstream-timeout", !request_done_ || !client_keep_alive_);
      response_done_ = true;
      FinishExchange();
      Flush(down_);
      return;
  }
}

void H1Proxy::ParkUpstream() {
  // Clean: no exchange, nothing pending either way, not told to close.
  // (A tunnel stream is this thread's: never parked for another.)
  if (!options_.upstream_pool || !options_.pool_source || !up_.io.valid() || up_connecting_ ||
      up_.io.is_channel() || up_.eof || close_upstream_ || in_exchange_ || upgraded_ ||
      !up_.in.empty() || !up_.out.empty() || !responses_.idle())
    return;
  up_.io.Unwatch(*loop_);
  lib::UniqueFd fd = up_.io.TakeFd();
  const bool via_pair = up_via_pair_;
  CloseUpstream();  // the rest of its state (the socket is the pool's now)
  options_.upstream_pool->Park(*options_.pool_source, upstream_addr_, std::move(fd), via_pair);
}

void H1Proxy::CloseUpstream() {
  up_.io.Unwatch(*loop_);
  up_.io.Close(false);
  up_.in.clear();
  up_.out.clear();
  up_.eof = false;
  up_.shut_after_flush = false;
  up_connecting_ = false;
  close_upstream_ = false;
  responses_.Reset();  // a new connection starts afresh
}

void H1Proxy::SwitchUpstream(const Destination& to) {
  if (options_.upstream_pool) {
    // The shared pool keeps it; ConnectUpstream takes one for `to`.
    if (!in_exchange_) ParkUpstream();
    CloseUpstream();
    upstream_addr_ = to;
    return;
  }
  // Kept only when nothing of an exchange is left on it.
  const bool reusable = up_.io.valid() && !up_.io.is_channel() && !up_connecting_ && !up_.eof &&
                        !close_upstream_ && up_.in.empty() && up_.out.empty() &&
                        !(upstream_addr_ == to);
  if (reusable) {
    auto idle = std::make_unique<Idle>();
    idle->proxy = this;
    idle->to = upstream_addr_;
    idle->via_pair = up_via_pair_;
    up_.io.Unwatch(*loop_);
    idle->fd = up_.io.TakeFd();
    if (loop_->Watch(idle->fd.get(), idle.get(), EPOLLIN | EPOLLRDHUP).ok()) {
      idle_.push_back(std::move(idle));
      if (idle_.size() > kMaxIdle) DropIdle(idle_.front().get());
    }
  }
  CloseUpstream();
  upstream_addr_ = to;
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (!((*it)->to == to)) continue;
    loop_->Unwatch((*it)->fd.get());
    up_.io = StreamIo(std::move((*it)->fd));
    up_via_pair_ = (*it)->via_pair;
    up_got_bytes_ = true;  // it has answered before
    idle_.erase(it);
    if (!up_.io.Watch(*loop_, &up_, 0).ok()) up_.io.Close(false);
    return;
  }
}

void H1Proxy::DropIdle(Idle* idle) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->get() != idle) continue;
    loop_->Unwatch(idle->fd.get());
    idle_.erase(it);  // closes it
    return;
  }
}

void H1Proxy::Finish() {
  if (done_) return;
  ParkUpstream();  // between requests: another client connection may use it
  for (auto& i : idle_) loop_->Unwatch(i->fd.get());
  idle_.clear();
  EndAttempt(false, -1);  // cut off: the endpoint is not to blame
  if (in_exchange_ && hooks_.on_request) {
    Mem().record.status = response_done_ ? Mem().record.status : 0;
    hooks_.on_request(Mem().record);
    in_exchange_ = false;
  }
  done_ = true;
  if (timer_ != 0) loop_->Cancel(timer_);
  timer_ = 0;
  for (Side* s : {&down_, &up_}) {
    s->io.Unwatch(*loop_);
    s->io.Close(false);
  }
  if (hooks_.on_done) hooks_.on_done(this);
}

void H1Proxy::UpstreamConnectFailed(const std::string& why) {
  CloseUpstream();
  if (!in_exchange_ || response_started_ || local_) return;
  EndAttempt(true, 0);
  if (TryRetry(Mem().verdict.retry_on_connect_failure)) return StartRetry();
  AnswerLocally(502, why, !client_keep_alive_);
  response_done_ = true;
  FinishExchange();
}

void H1Proxy::EndAttempt(bool failure, int status) {
  if (!exchange_) return;  // between requests: no attempt
  Verdict& rules = exchange_->verdict;
  if (rules.endpoint < 0) return;  // told already, or no picker
  Attempt a{.endpoint = rules.endpoint,
            .latency_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              loop_->Now() - Mem().attempt_started)
                              .count(),
            .failure = failure,
            .status = status,
            .state = rules.state.get()};
  rules.endpoint = -1;
  if (hooks_.on_attempt) hooks_.on_attempt(a);
}

bool H1Proxy::TryRetry(bool allowed_for_failure) {
  if (!allowed_for_failure || !replayable_ || Mem().record.retries >= Mem().verdict.retries ||
      !hooks_.retry)
    return false;
  return hooks_.retry(Mem().verdict.state.get(), &Mem().retry_to, &Mem().retry_endpoint);
}

void H1Proxy::StartRetry() {
  ++Mem().record.retries;
  retry_pending_ = discarding_ = false;
  CloseUpstream();  // with what it had of the failed attempt
  upstream_addr_ = Mem().retry_to;
  Mem().record.upstream = Mem().retry_to;
  SwitchUpstream(Mem().retry_to);  // a kept connection to it, if there is one
  Mem().verdict.endpoint = Mem().retry_endpoint;
  up_.out.Append(Mem().replay.view());
  Mem().attempt_started = loop_->Now();
  if (!ConnectUpstream()) return UpstreamConnectFailed("upstream-connect-failed");
  if (head_request_) responses_.ExpectNoBody();
  Flush(up_);
}

}  // namespace shunt::proxy::http
