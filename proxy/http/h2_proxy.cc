#include "proxy/http/h2_proxy.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "proxy/common/socket_ops.h"
#include "proxy/http/h1_session.h"
#include "proxy/http/h1_writer.h"
#include "proxy/http/trace_context.h"

namespace shunt::proxy::http {
namespace {

constexpr size_t kReadChunk = 64 * 1024;

absl::BitGen& Bits() {
  thread_local absl::BitGen bits;
  return bits;
}

absl::string_view Pseudo(const H2Headers& h, absl::string_view name) {
  for (const auto& [n, v] : h) {
    if (n.empty() || n[0] != ':') break;  // pseudo-headers come first (nghttp2 checks)
    if (n == name) return v;
  }
  return {};
}

int StatusOf(const H2Headers& h) {
  int status = 0;
  return absl::SimpleAtoi(Pseudo(h, ":status"), &status) ? status : 0;
}

}  // namespace

std::shared_ptr<H2Proxy> H2Proxy::Start(EventLoop* loop, StreamIo downstream,
                                        const Destination& upstream, Options options,
                                        ExchangeHooks hooks, absl::string_view already_read) {
  std::shared_ptr<H2Proxy> p(new H2Proxy(loop, upstream, options, std::move(hooks)));
  if (!p->Init(std::move(downstream), already_read)) return nullptr;
  return p;
}

H2Proxy::H2Proxy(EventLoop* loop, const Destination& upstream, Options options, ExchangeHooks hooks)
    : loop_(loop), upstream_addr_(upstream), options_(options), hooks_(std::move(hooks)) {
  down_.proxy = this;
  down_.downstream = true;
}

bool H2Proxy::Init(StreamIo downstream, absl::string_view already_read) {
  H2Session::Events ev;
  ev.on_head = [this](int32_t id, H2Headers& h, bool end) { OnRequestHead(id, h, end); };
  ev.on_data = [this](int32_t id, absl::string_view d) { OnRequestData(id, d); };
  ev.on_trailers = [this](int32_t id, H2Headers& t) {
    // Kept until the attempt's end takes them (MoveBody): a retry before
    // that still sends them; one after it cannot (not kept twice).
    if (Exchange* ex = Find(id)) ex->request_trailers = std::move(t);
  };
  ev.on_end = [this](int32_t id) { OnRequestEnd(id); };
  ev.on_close = [this](int32_t id, uint32_t code) { OnDownClose(id, code); };
  ev.on_send_space = [this](int32_t id) { OnDownSpace(id); };
  ev.on_rejected = [this](int status, absl::string_view reason) {
    // Counted as H1Proxy counts a request it cannot read (no allocation
    // worth saving: the connection ends).
    if (!hooks_.on_request) return;
    ExchangeRecord r;
    r.status = status;
    r.local = true;
    r.reason.assign(reason.data(), reason.size());
    hooks_.on_request(r);
  };
  if (options_.downstream_http1) {
    down_.session = std::make_unique<H1ServerSession>(H1Limits(), std::move(ev));
  } else {
    auto session = H2Session::Create(H2Session::Role::kServer, options_.limits, std::move(ev));
    if (!session.ok()) return false;
    down_.session = std::move(*session);
  }
  down_.io = std::move(downstream);
  if (!down_.io.Watch(*loop_, &down_, EPOLLIN).ok()) {
    down_.io.Close(false);
    return false;
  }
  ArmIdle();
  if (!already_read.empty()) {
    // Not from inside Start: the caller holds the proxy first.
    loop_->Later([weak = weak_from_this(), first = std::string(already_read)] {
      auto p = weak.lock();
      if (!p || p->done_) return;
      if (!p->down_.session->Receive(first).ok()) p->down_.gone = true;
      p->Pump();
    });
  }
  return true;
}

H2Proxy::~H2Proxy() {
  if (idle_timer_ != 0) loop_->Cancel(idle_timer_);
  if (sweep_timer_ != 0) loop_->Cancel(sweep_timer_);
  for (auto& [id, ex] : exchanges_)
    if (ex.timer != 0) loop_->Cancel(ex.timer);
  down_.io.Unwatch(*loop_);
  for (auto& [key, up] : ups_) up->io.Unwatch(*loop_);
}

void H2Proxy::OnEvents(Conn& c, uint32_t events) {
  auto self = shared_from_this();
  if (done_ || c.gone) return;
  if (c.connecting) {
    const int err = ConnectResult(c.io.fd());
    if (err != 0) {
      // Still `connecting`: UpConnFailed tells a connect failure from a reset by it.
      UpConnFailed(&c, absl::StrCat("upstream-connect-failed: ", strerror(err)));
      return Pump();
    }
    c.connecting = false;
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && !Flush(c)) return Pump();
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    char buf[kReadChunk];
    for (int i = 0; i < 4 && !c.gone; ++i) {
      const ssize_t n = c.io.Recv(buf, sizeof(buf));
      if (n > 0) {
        if (absl::Status st = c.session->Receive({buf, static_cast<size_t>(n)}); !st.ok()) {
          // A protocol error: its GOAWAY goes out, then the connection.
          if (c.downstream)
            c.gone = true;
          else if (options_.upstream_http1)
            UpConnFailed(&c, std::string(st.message()));
          else
            UpConnFailed(&c, "bad-upstream-response: HTTP/2 protocol error");
          break;
        }
        if (static_cast<size_t>(n) < sizeof(buf) || !c.session->wants_input()) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
      // The end of the connection (or a reset): every stream on it ends.
      // An HTTP/1.1 client that only half-closed still gets its answers.
      if (c.downstream) {
        if (n == 0 && options_.downstream_http1 && !(events & EPOLLHUP)) {
          c.session->ReceiveEof();
          if (c.session->alive()) break;
        }
        Finish();
        return;
      }
      if (n < 0 && errno == ECONNREFUSED) {
        // A tunnel stream the peer node refused before it opened: a connect failure.
        c.connecting = true;
        UpConnFailed(&c, "upstream-connect-failed: peer node refused the stream");
        break;
      }
      // An HTTP/1.x response delimited by the close ends here.
      if (n == 0) c.session->ReceiveEof();
      UpConnFailed(&c, n == 0 ? "upstream-closed" : "upstream-reset");
      break;
    }
  }
  Pump();
}

bool H2Proxy::Flush(Conn& c) {
  while (!c.out.empty() && c.io.valid() && !c.connecting) {
    const ssize_t n = c.io.Send(c.out.data(), c.out.size());
    if (n > 0) {
      c.out.Consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    if (c.downstream) {
      Finish();
      return false;
    }
    if (errno == ECONNREFUSED) {
      c.connecting = true;  // (a tunnel stream refused before it opened: a connect failure)
      UpConnFailed(&c, "upstream-connect-failed: peer node refused the stream");
      return false;
    }
    UpConnFailed(&c, absl::StrCat("upstream-send-failed: ", strerror(errno)));
    return false;
  }
  if (c.out.empty()) c.out.Release();
  return true;
}

void H2Proxy::Pump() {
  if (done_ || pumping_) return;
  pumping_ = true;
  // Output made while producing output (a stream's room frees another's
  // bytes): a few rounds, each bounded by the sockets' buffers.
  for (int round = 0; round < 4 && !done_; ++round) {
    bool more = false;
    auto pump = [&](Conn& c) {
      // A connection that is going still sends what its session has to
      // say last (a GOAWAY naming the error), as far as its socket takes it.
      if (!c.session || !c.io.valid()) return;
      const size_t before = c.out.size();
      // A socket that does not take what it is given gets no more: its
      // sessions' streams fill, and their windows close.
      if (c.out.size() < options_.max_buffered && !c.session->TakeOutput(&c.out) && c.out.empty()) {
        // The session is over (a GOAWAY sent or received, an error it
        // handled itself) and everything went: its requests are answered.
        if (c.downstream)
          c.gone = true;
        else
          UpConnFailed(&c, "upstream-closed");
      }
      if (c.out.size() > before) more = true;
      if (!c.connecting) Flush(c);
    };
    pump(down_);
    for (auto& [key, up] : ups_) pump(*up);
    if (!more) break;
    if (round == 3) {
      // Still more to say: the next round later, not left waiting for an
      // unrelated event.
      loop_->Later([weak = weak_from_this()] {
        if (auto p = weak.lock()) p->Pump();
      });
    }
  }
  pumping_ = false;
  if (done_) return;
  if (down_.gone) return Finish();
  if (options_.upstream_http1 && ups_.size() > kMaxIdleHttp1Upstreams) TrimIdleHttp1Upstreams();
  bool answered = false;
  for (auto it = ups_.begin(); it != ups_.end();) {
    Conn& up = *it->second;
    if (!up.gone && up.session->alive()) {
      UpdateInterest(up);
      ++it;
      continue;
    }
    answered |= !up.exchanges.empty();     // (their answers: pumped below)
    UpConnFailed(&up, "upstream-closed");  // no Exchange keeps pointing at it
    up.io.Unwatch(*loop_);
    it = ups_.erase(it);
  }
  UpdateInterest(down_);
  if (answered) {
    loop_->Later([weak = weak_from_this()] {
      if (auto p = weak.lock()) p->Pump();
    });
  }
}

void H2Proxy::TrimIdleHttp1Upstreams() {
  // A burst of streams opened as many HTTP/1.1 connections; once it is
  // over, a few stay idle per upstream for the next ones, the rest go.
  std::map<std::string, size_t> idle;
  for (auto& [key, up] : ups_) {
    if (up->gone || !up->session->can_open()) continue;
    if (++idle[up->to.ToAuthority()] > kMaxIdleHttp1Upstreams) up->session->Shutdown();
  }
}

void H2Proxy::UpdateInterest(Conn& c) {
  if (!c.io.valid()) return;
  // An HTTP/1.1 peer is held back by not reading it (h1_session.h).
  uint32_t want = c.connecting               ? uint32_t{EPOLLOUT}
                  : c.session->wants_input() ? uint32_t{EPOLLIN}
                                             : 0u;
  if (!c.out.empty()) want |= EPOLLOUT;
  c.io.Interest(*loop_, want);
}

void H2Proxy::Finish() {
  if (done_) return;
  done_ = true;
  if (idle_timer_ != 0) loop_->Cancel(idle_timer_);
  idle_timer_ = 0;
  if (sweep_timer_ != 0) loop_->Cancel(sweep_timer_);
  sweep_timer_ = 0;
  for (auto& [id, ex] : exchanges_) {
    if (ex.timer != 0) loop_->Cancel(ex.timer);
    ex.timer = 0;
    EndAttempt(ex, false, -1);  // cut off: no endpoint's fault
    if (hooks_.on_request) {
      if (!ex.response_ended) ex.record.status = 0;
      hooks_.on_request(ex.record);
    }
  }
  exchanges_.clear();
  for (auto& [key, up] : ups_) up->io.Unwatch(*loop_);
  ups_.clear();
  down_.io.Unwatch(*loop_);
  down_.io.Close(false);
  if (hooks_.on_done) hooks_.on_done(this);
}

void H2Proxy::ArmIdle() {
  if (idle_timer_ != 0) loop_->Cancel(idle_timer_);
  idle_timer_ = 0;
  if (options_.idle_timeout_ms <= 0 || !exchanges_.empty()) return;
  idle_timer_ =
      loop_->After(std::chrono::milliseconds(options_.idle_timeout_ms), [weak = weak_from_this()] {
        auto p = weak.lock();
        if (!p || p->done_) return;
        p->idle_timer_ = 0;
        if (!p->exchanges_.empty()) return;
        p->down_.session->Shutdown();  // GOAWAY, then the end
        p->Pump();
        p->Finish();
      });
}

H2Proxy::Exchange* H2Proxy::Find(int32_t id) {
  auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : &it->second;
}

H2Proxy::Exchange* H2Proxy::FindUp(Conn* up, int32_t up_id) {
  auto it = up->exchanges.find(up_id);
  return it == up->exchanges.end() ? nullptr : Find(it->second);
}

void H2Proxy::OnRequestHead(int32_t id, H2Headers& headers, bool end) {
  if (idle_timer_ != 0) loop_->Cancel(idle_timer_);
  idle_timer_ = 0;
  Exchange& ex = exchanges_[id];
  ex.id = id;
  ex.request_ended = end;
  ex.started = ex.active = loop_->Now();
  ArmStreamSweep();
  // The request as the judge sees an HTTP/1.1 one: its method, target and
  // headers, :authority as Host.
  H1Head head;
  head.method = std::string(Pseudo(headers, ":method"));
  head.target = std::string(Pseudo(headers, ":path"));
  const std::string authority(Pseudo(headers, ":authority"));
  bool has_host = false, upgrade = false, host_differs = false;
  H2Headers regular;
  for (auto& [n, v] : headers) {
    if (!n.empty() && n[0] == ':') continue;
    if (n == "host") {
      has_host = true;
      // The judge reads Host; an HTTP/1.1 upstream gets :authority
      // (RFC 9113 8.3.1: malformed when they name different hosts).
      host_differs |= !authority.empty() && !absl::EqualsIgnoreCase(v, authority);
    }
    if (n == "upgrade") upgrade = true;  // only an HTTP/1.1 client's (h1_session.h)
    regular.emplace_back(n, v);
  }
  if (!has_host && !authority.empty()) head.headers.emplace_back("host", authority);
  for (const auto& h : regular) head.headers.push_back(h);
  ex.record = ExchangeRecord{.method = head.method};
  if (head.method == "CONNECT") {
    // Plain CONNECT would make a byte tunnel past the routes (and extended
    // CONNECT is not offered): refused on its stream.
    ex.record.reason = "l7-connect-not-supported";
    return AnswerLocally(ex, 405, "l7-connect-not-supported");
  }
  if (host_differs) {
    ex.record.reason = "host-differs-from-authority";
    return AnswerLocally(ex, 400, "host-differs-from-authority");
  }
  RequestView view{.method = head.method,
                   .path = absl::string_view(head.target).substr(0, head.target.find('?'))};
  for (const auto& [n, v] : head.headers) view.headers.emplace_back(n, v);
  ExchangeVerdict& v = ex.rules;  // the stream's own: its state is this request's
  if (hooks_.judge) hooks_.judge(head, view, &v);
  ex.record.route = v.route;
  ex.record.reason = v.reason;
  ex.record.state = v.state;
  if (!v.reason.empty()) ex.record.path = std::string(view.path);
  if (!v.allow) {
    // No attempt: nothing to tell the balancer, nothing to retry.
    v.endpoint = -1;
    v.retries = 0;
    return AnswerLocally(ex, v.status,
                         v.route.empty() ? v.reason : absl::StrCat(v.reason, "; route=", v.route));
  }
  if (upgrade) {
    // An HTTP/1.1 Upgrade (WebSocket) to an upstream that speaks only
    // HTTP/2: no byte stream to hand it over (RFC 8441 is not offered).
    v.endpoint = -1;
    ex.record.reason = "l7-upgrade-not-mapped";
    return AnswerLocally(ex, 501, "l7-upgrade-not-mapped");
  }
  const Destination to = ex.rules.upstream ? *ex.rules.upstream : upstream_addr_;
  HopSpan span = StartHop(regular, Bits());
  Propagate(span, &regular);
  ex.record.trace_id = span.trace_id;
  ex.record.span_id = span.span_id;
  ex.record.parent_id = span.parent_id;
  ex.replay.reserve(regular.size() + 4);
  for (auto& h : headers)
    if (!h.first.empty() && h.first[0] == ':') ex.replay.push_back(std::move(h));
  for (auto& h : regular) ex.replay.push_back(std::move(h));
  ex.replayable = true;  // its body too, while it stays small (KeepForReplay)
  std::string why;
  if (!SubmitUpstream(ex, to, &why)) {
    EndAttempt(ex, true, 0);
    if (!Retry(ex, ex.rules.retry_on_connect_failure, false)) return AnswerLocally(ex, 502, why);
  }
  ArmResponseTimer(ex);
}

void H2Proxy::ArmResponseTimer(Exchange& ex) {
  const int timeout_ms =
      ex.rules.timeout_ms > 0 ? ex.rules.timeout_ms : options_.response_timeout_ms;
  if (timeout_ms <= 0 || ex.local) return;
  ex.timer =
      loop_->After(std::chrono::milliseconds(timeout_ms), [weak = weak_from_this(), id = ex.id] {
        auto p = weak.lock();
        if (!p || p->done_) return;
        Exchange* e = p->Find(id);
        if (!e) return;
        e->timer = 0;
        if (e->response_started || e->local) return;
        // Too slow: 504, and its upstream stream is cancelled.
        p->EndAttempt(*e, true, 0);
        if (e->up && p->FindUp(e->up, e->up_id)) {
          e->up->session->Reset(e->up_id, NGHTTP2_CANCEL);
          e->up->exchanges.erase(e->up_id);
        }
        p->LetGoOfUpstream(*e);
        p->AnswerLocally(*e, 504, "upstream-timeout");
        p->Pump();
      });
}

H1SessionLimits H2Proxy::H1Limits() const {
  return {.parser = options_.h1_limits,
          .window = options_.limits.stream_window,
          .send_buffer = options_.limits.send_buffer};
}

H2Proxy::Conn* H2Proxy::UpstreamFor(const Destination& to) {
  const std::string key = to.ToAuthority();
  auto it = ups_.find(key);
  if (it != ups_.end() && !it->second->gone && it->second->session->can_open())
    return it->second.get();
  if (options_.upstream_http1) {
    // HTTP/1.1 upstreams take one request at a time: an idle one kept
    // alive, or another connection (the busy ones go on under their own
    // keys, kept for the requests after theirs).
    for (auto& [k, up] : ups_)
      if (!up->gone && up->to == to && up->session->can_open()) return up.get();
    if (it != ups_.end()) {
      ups_[absl::StrCat(key, "#", reinterpret_cast<uintptr_t>(it->second.get()))] =
          std::move(it->second);
      ups_.erase(it);
    }
  } else if (it != ups_.end()) {
    // Full or going away: a fresh connection takes new streams; the old
    // one finishes its own (kept under another key until it is over).
    // GOAWAY: it takes nothing new and closes once its streams are over.
    it->second->session->Shutdown();
    ups_[absl::StrCat(key, "#", reinterpret_cast<uintptr_t>(it->second.get()))] =
        std::move(it->second);
    ups_.erase(it);
  }
  auto c = std::make_unique<Conn>();
  c->proxy = this;
  c->to = to;
  Conn* raw = c.get();
  H2Session::Events ev;
  ev.on_head = [this, raw](int32_t id, H2Headers& h, bool end) { OnResponseHead(raw, id, h, end); };
  ev.on_data = [this, raw](int32_t id, absl::string_view d) { OnResponseData(raw, id, d); };
  ev.on_trailers = [this, raw](int32_t id, H2Headers& t) {
    if (Exchange* ex = FindUp(raw, id)) ex->response_trailers = std::move(t);
  };
  ev.on_end = [this, raw](int32_t id) { OnResponseEnd(raw, id); };
  ev.on_close = [this, raw](int32_t id, uint32_t code) { OnUpClose(raw, id, code); };
  ev.on_send_space = [this, raw](int32_t id) { OnUpSpace(raw, id); };
  if (options_.upstream_http1) {
    c->session = std::make_unique<H1ClientSession>(H1Limits(), std::move(ev));
  } else {
    auto session = H2Session::Create(H2Session::Role::kClient, options_.limits, std::move(ev));
    if (!session.ok()) return nullptr;
    c->session = std::move(*session);
  }
  socklen_t len = 0;
  const sockaddr_storage ss = ToSockaddr(to, &len);
  bool connected = false;
  c->io = hooks_.open_upstream ? hooks_.open_upstream(to, &connected)
                               : StreamIo(lib::UniqueFd(socket(
                                     ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)));
  if (!c->io.valid()) return nullptr;
  if (!connected) SetNoDelay(c->io.fd());
  if (!c->io.Watch(*loop_, c.get(), EPOLLOUT).ok()) return nullptr;
  if (!connected && connect(c->io.fd(), reinterpret_cast<const sockaddr*>(&ss), len) != 0 &&
      errno != EINPROGRESS) {
    c->io.Unwatch(*loop_);
    return nullptr;
  }
  c->connecting = !connected;
  c->serial = ++next_serial_;
  if (c->connecting && options_.connect_timeout_ms > 0) {
    // No SYN-ACK in time (a blackholed endpoint): its streams fail as a
    // connect failure. The timer finds the connection by its serial (it
    // may be gone, and another made at the same address).
    loop_->After(std::chrono::milliseconds(options_.connect_timeout_ms),
                 [weak = weak_from_this(), serial = c->serial] {
                   auto p = weak.lock();
                   if (!p || p->done_) return;
                   for (auto& [k, up] : p->ups_) {
                     if (up->serial != serial) continue;
                     if (up->connecting && !up->gone) {
                       p->UpConnFailed(up.get(), "upstream-connect-timeout");
                       p->Pump();
                     }
                     return;
                   }
                 });
  }
  ups_[key] = std::move(c);
  return raw;
}

void H2Proxy::OnRequestData(int32_t id, absl::string_view data) {
  Exchange* ex = Find(id);
  if (!ex || ex->local || (!ex->up && !ex->retrying)) {
    down_.session->Consumed(id, data.size());  // dropped: a local answer's request
    return;
  }
  ex->to_up.Append(data);
  MoveBody(*ex, /*to_up=*/true);
}

void H2Proxy::OnRequestEnd(int32_t id) {
  Exchange* ex = Find(id);
  if (!ex) return;
  ex->request_ended = true;
  MoveBody(*ex, true);
}

// Body bytes one side received go to the other as its stream takes them;
// the receiving side's window opens by as many. The end (with trailers)
// follows the last byte.
void H2Proxy::MoveBody(Exchange& ex, bool to_up) {
  if (to_up) {
    if (!ex.up || ex.local) return;
    if (!ex.to_up.empty()) {
      const size_t n = ex.up->session->Send(ex.up_id, ex.to_up.view());
      // Past the replayed front: new bytes, kept for a retry and credited
      // to the client's window.
      const size_t again = std::min(n, ex.uncredited);
      ex.uncredited -= again;
      if (n > again) {
        KeepForReplay(ex, ex.to_up.view().substr(again, n - again));
        down_.session->Consumed(ex.id, n - again);
      }
      ex.to_up.Consume(n);
      if (n > 0) ex.active = loop_->Now();
    }
    if (ex.to_up.empty() && ex.request_ended) {
      if (!ex.request_trailers.empty()) {
        // The trailers go with this attempt: no other can send them.
        ex.replayable = false;
        ex.replay_body.Release();
      }
      ex.up->session->End(ex.up_id, std::move(ex.request_trailers));
      ex.active = loop_->Now();
    }
    return;
  }
  if (!ex.to_down.empty()) {
    const size_t n = down_.session->Send(ex.id, ex.to_down.view());
    ex.to_down.Consume(n);
    if (ex.up) ex.up->session->Consumed(ex.up_id, n);
    if (n > 0) ex.active = loop_->Now();
  }
  if (ex.to_down.empty() && ex.response_ended)
    down_.session->End(ex.id, std::move(ex.response_trailers));
}

void H2Proxy::ArmStreamSweep() {
  if (sweep_timer_ != 0 || options_.stream_idle_timeout_ms <= 0) return;
  sweep_timer_ =
      loop_->After(std::chrono::milliseconds(std::max(options_.stream_idle_timeout_ms / 2, 1)),
                   [weak = weak_from_this()] {
                     auto p = weak.lock();
                     if (!p || p->done_) return;
                     p->sweep_timer_ = 0;
                     p->SweepStreams();
                   });
}

void H2Proxy::SweepStreams() {
  const auto now = loop_->Now();
  const auto limit = std::chrono::milliseconds(options_.stream_idle_timeout_ms);
  bool reset = false;
  for (auto& [id, ex] : exchanges_) {
    if (now - ex.active < limit) continue;
    // The client's stream goes (OnDownClose then lets go of the upstream
    // one and counts the request). A server that took the whole request
    // and never answered is to blame; a client that stopped is not.
    if (ex.record.reason.empty()) ex.record.reason = "stream-idle-timeout";
    if (ex.request_ended && !ex.response_started) EndAttempt(ex, true, 0);
    down_.session->Reset(id, NGHTTP2_CANCEL);
    ex.active = now;  // told once
    reset = true;
  }
  if (reset) Pump();
  if (!done_ && !exchanges_.empty()) ArmStreamSweep();
}

void H2Proxy::OnDownSpace(int32_t id) {
  if (Exchange* ex = Find(id)) MoveBody(*ex, false);
}

void H2Proxy::OnUpSpace(Conn* up, int32_t up_id) {
  if (Exchange* ex = FindUp(up, up_id)) MoveBody(*ex, true);
}

void H2Proxy::OnDownClose(int32_t id, uint32_t) {
  auto it = exchanges_.find(id);
  if (it == exchanges_.end()) return;
  Exchange& ex = it->second;
  if (ex.timer != 0) loop_->Cancel(ex.timer);
  // The client went (or everything was said): its upstream stream goes
  // too, unless both its halves are over (a request body not all passed
  // on would leave the server waiting for the rest).
  if (ex.up && FindUp(ex.up, ex.up_id)) {
    if (!ex.response_ended || !ex.request_ended || !ex.to_up.empty())
      ex.up->session->Reset(ex.up_id, NGHTTP2_CANCEL);
    ex.up->exchanges.erase(ex.up_id);
  }
  LetGoOfUpstream(ex);
  DropRequestBody(ex);
  EndAttempt(ex, false, -1);
  if (!ex.response_ended) ex.record.status = 0;
  ex.record.micros =
      std::chrono::duration_cast<std::chrono::microseconds>(loop_->Now() - ex.started).count();
  if (hooks_.on_request) hooks_.on_request(ex.record);
  exchanges_.erase(it);
  if (exchanges_.empty()) ArmIdle();
}

void H2Proxy::OnResponseHead(Conn* up, int32_t up_id, H2Headers& headers, bool end) {
  Exchange* ex = FindUp(up, up_id);
  if (!ex) return;
  const int status = StatusOf(headers);
  if (status >= 100 && status < 200) {
    (void)down_.session->SubmitInterim(ex->id, headers);
    return;
  }
  const bool failed = status >= 500 && ex->rules.retry_on_5xx;
  EndAttempt(*ex, failed, status);
  Destination next;
  int endpoint = -1;
  if (failed && PickRetry(*ex, true, false, &next, &endpoint)) {
    // Nothing of it reached the client: this answer is dropped (what
    // follows of it is credited and discarded) and the request goes again.
    up->session->Reset(up_id, NGHTTP2_CANCEL);
    up->exchanges.erase(up_id);
    LetGoOfUpstream(*ex);
    QueueRetry(*ex, next, endpoint);
    return;
  }
  if (ex->timer != 0) loop_->Cancel(ex->timer);
  ex->timer = 0;
  ex->response_started = true;
  ex->active = loop_->Now();
  ex->response_ended = end;
  ex->record.status = status;
  if (!down_.session->SubmitResponse(ex->id, headers, end).ok())
    down_.session->Reset(ex->id, NGHTTP2_INTERNAL_ERROR);
}

void H2Proxy::OnResponseData(Conn* up, int32_t up_id, absl::string_view data) {
  Exchange* ex = FindUp(up, up_id);
  if (!ex || !ex->response_started) {
    up->session->Consumed(up_id, data.size());
    return;
  }
  ex->to_down.Append(data);
  MoveBody(*ex, false);
}

void H2Proxy::OnResponseEnd(Conn* up, int32_t up_id) {
  Exchange* ex = FindUp(up, up_id);
  if (!ex || !ex->response_started) return;
  ex->response_ended = true;
  MoveBody(*ex, false);
}

void H2Proxy::OnUpClose(Conn* up, int32_t up_id, uint32_t code) {
  auto it = up->exchanges.find(up_id);
  if (it == up->exchanges.end()) return;
  Exchange* ex = Find(it->second);
  up->exchanges.erase(it);
  if (!ex) return;
  LetGoOfUpstream(*ex);
  if (!ex->response_ended && !ex->response_started) {
    // Reset (or refused) before it answered: another attempt takes the
    // body (what was sent is kept for it, what was not still waits).
    EndAttempt(*ex, true, 0);
    const bool refused = code == NGHTTP2_REFUSED_STREAM;
    if (Retry(*ex, ex->rules.retry_on_reset, refused)) return;
    return AnswerLocally(*ex, 502, refused ? "upstream-refused-stream" : "upstream-reset");
  }
  DropRequestBody(*ex);            // the upstream takes no more of it
  if (ex->response_ended) return;  // ended cleanly; its bytes are on their way
  down_.session->Reset(ex->id, code == NGHTTP2_NO_ERROR ? uint32_t{NGHTTP2_INTERNAL_ERROR} : code);
}

void H2Proxy::UpConnFailed(Conn* up, const std::string& why) {
  up->gone = true;
  const bool retry_on = up->connecting;  // never connected: a connect failure, else a reset
  std::map<int32_t, int32_t> streams;
  streams.swap(up->exchanges);
  for (const auto& [up_id, id] : streams) {
    Exchange* ex = Find(id);
    if (!ex) continue;
    ex->up = nullptr;  // its session is gone: no window to give back there
    if (!ex->response_ended && !ex->response_started) {
      EndAttempt(*ex, true, 0);
      const bool allowed = retry_on ? ex->rules.retry_on_connect_failure : ex->rules.retry_on_reset;
      // A kept-alive HTTP/1.1 connection the server closed as this
      // request went on it, before a byte of answer: not processed, sent
      // again once on a new connection (as a refused stream).
      const bool stale = !retry_on && options_.upstream_http1 && up->requests > 1;
      if (!Retry(*ex, allowed, stale)) AnswerLocally(*ex, 502, why);  // (drops the body)
      continue;
    }
    DropRequestBody(*ex);
    if (!ex->response_ended) down_.session->Reset(id, NGHTTP2_INTERNAL_ERROR);
  }
}

void H2Proxy::AnswerLocally(Exchange& ex, int status, const std::string& reason) {
  if (ex.timer != 0) loop_->Cancel(ex.timer);
  ex.timer = 0;
  ex.local = true;
  ex.record.local = true;
  ex.record.status = status;
  if (ex.record.reason.empty()) ex.record.reason = reason;
  DropRequestBody(ex);
  ex.response_started = ex.response_ended = true;
  const std::string body = absl::StrCat(ReasonPhrase(status), ": ", reason, "\n");
  H2Headers h = {{":status", absl::StrCat(status)},
                 {status == 403 ? "x-shunt-denied" : "x-shunt-error", reason.substr(0, 128)},
                 {"content-type", "text/plain; charset=utf-8"},
                 {"content-length", absl::StrCat(body.size())}};
  const bool head = ex.record.method == "HEAD";  // the length, no body
  if (!down_.session->SubmitResponse(ex.id, h, head).ok()) {
    down_.session->Reset(ex.id, NGHTTP2_INTERNAL_ERROR);
    return;
  }
  if (head) return;
  down_.session->Send(ex.id, body);
  down_.session->End(ex.id);
  // What the client still sends of this request is read and dropped
  // (OnRequestData), its window kept open: the stream ends when it does.
}

void H2Proxy::KeepForReplay(Exchange& ex, absl::string_view sent) {
  if (!ex.replayable) return;
  if (ex.replay_body.size() + sent.size() > kMaxReplay) {
    ex.replayable = false;  // too big to keep: no retry for this request
    ex.replay_body.Release();
    return;
  }
  ex.replay_body.Append(sent);
}

void H2Proxy::LetGoOfUpstream(Exchange& ex) {
  // The response bytes still waiting for the client were never credited
  // upstream (MoveBody does as they go): credited now, as the upstream's
  // stream is over or left, so its connection's window stays whole.
  if (ex.up && !ex.to_down.empty()) ex.up->session->Consumed(ex.up_id, ex.to_down.size());
  ex.up = nullptr;
}

void H2Proxy::DropRequestBody(Exchange& ex) {
  // Request bytes that will not be passed on: the client's window back
  // (but for a replayed front, credited the first time).
  if (ex.to_up.size() > ex.uncredited)
    down_.session->Consumed(ex.id, ex.to_up.size() - ex.uncredited);
  ex.uncredited = 0;
  ex.to_up.clear();
  ex.replay_body.Release();
}

void H2Proxy::EndAttempt(Exchange& ex, bool failure, int status) {
  if (ex.rules.endpoint < 0) return;
  ExchangeAttempt a{.endpoint = ex.rules.endpoint,
                    .latency_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                      loop_->Now() - ex.attempt_started)
                                      .count(),
                    .failure = failure,
                    .status = status,
                    .state = ex.rules.state.get()};
  ex.rules.endpoint = -1;
  if (hooks_.on_attempt) hooks_.on_attempt(a);
}

}  // namespace shunt::proxy::http
