#include "proxy/server/l7_stream_leg.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "proxy/server/tunnel_conn.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {

void L7StreamLeg::Attach(const std::shared_ptr<TunnelConn>& tunnel, int32_t stream_id) {
  tunnel_ = tunnel;
  id_ = stream_id;
}

void L7StreamLeg::StartReading() {
  open_ = true;
  Notify();
}

void L7StreamLeg::OnData(absl::string_view data) {
  if (closed_) {
    // Nobody reads any more (a lingering close: this end's END_STREAM went
    // after its last answer, which a reset now could still cut short):
    // dropped, and handed back to the window, until the peer ends too.
    if (auto t = tunnel_.lock()) t->session().Consumed(id_, data.size());
    return;
  }
  worker_->stats().Add(Stat::kBytesFromPeer, data.size());
  in_.Append(data);
  Notify();
}

void L7StreamLeg::OnPeerEof() {
  peer_eof_ = true;
  Notify();
}

void L7StreamLeg::OnStreamClosed(uint32_t error_code) {
  // A reset: as the tunnel's abort (before it opened, a refusal:
  // REFUSED_STREAM, a GOAWAY).
  if (error_code != 0) return Abort();
  stream_over_ = true;  // the tunnel let go of this leg
  peer_eof_ = true;
  Notify();
}

void L7StreamLeg::OnSendSpace() { Notify(); }

void L7StreamLeg::Abort() {
  refused_ = !open_;  // the peer refused the stream, or the tunnel never came up
  stream_over_ = true;
  reset_ = true;
  DropInput();
  Notify();
}

void L7StreamLeg::Watch(EventLoop::Watcher* w, uint32_t interest) {
  watcher_ = w;
  Interest(interest);
}

void L7StreamLeg::Interest(uint32_t interest) {
  interest_ = interest;
  if (Pending() != 0) Notify();
}

void L7StreamLeg::Unwatch() {
  watcher_ = nullptr;
  interest_ = 0;
}

uint32_t L7StreamLeg::Pending() {
  if (closed_ || !watcher_ || interest_ == 0) return 0;
  // A reset is reported whatever is wanted, as epoll's EPOLLERR/EPOLLHUP.
  if (reset_) return EPOLLIN | EPOLLOUT | EPOLLERR | EPOLLHUP;
  uint32_t events = 0;
  if ((interest_ & EPOLLIN) && (!in_.empty() || peer_eof_)) events |= EPOLLIN;
  if ((interest_ & EPOLLIN) && peer_eof_) events |= EPOLLRDHUP;
  if (interest_ & EPOLLOUT) {
    auto t = tunnel_.lock();
    if (write_shut_ || stream_over_ || !t)
      events |= EPOLLOUT;  // a send fails at once: EPIPE
    else if (open_ && t->session().SendRoom(id_) > 0)
      events |= EPOLLOUT;
  }
  return events;
}

void L7StreamLeg::Notify() {
  if (notify_pending_ || closed_ || !watcher_) return;
  notify_pending_ = true;
  worker_->loop().Later(weak_from_this(), &L7StreamLeg::Deliver);
}

void L7StreamLeg::Deliver(void* self) {
  auto* leg = static_cast<L7StreamLeg*>(self);
  leg->notify_pending_ = false;
  const uint32_t events = leg->Pending();
  if (events == 0) return;
  leg->watcher_->OnEvents(events);
  // Level-triggered: a watcher that stopped short (four reads a turn, for
  // fairness) is told again next round, as epoll would.
  if (leg->Pending() != 0) leg->Notify();
}

ssize_t L7StreamLeg::Recv(char* buf, size_t n) {
  if (closed_) {
    errno = EBADF;
    return -1;
  }
  if (reset_) {
    errno = refused_ ? ECONNREFUSED : ECONNRESET;
    return -1;
  }
  if (in_.empty()) {
    if (peer_eof_) return 0;
    errno = EAGAIN;
    return -1;
  }
  const size_t k = std::min(n, in_.size());
  std::memcpy(buf, in_.data(), k);
  in_.Consume(k);
  if (in_.empty()) in_.Release();  // an idle stream keeps no buffer
  // Read: the peer may send as much more (the stream's window; the
  // tunnel's share only, once the stream is over).
  if (auto t = tunnel_.lock()) {
    t->session().Consumed(id_, k);
    t->FlushSoon();
  }
  return static_cast<ssize_t>(k);
}

ssize_t L7StreamLeg::Send(const char* data, size_t n) {
  if (closed_ || write_shut_) {
    errno = EPIPE;
    return -1;
  }
  auto t = tunnel_.lock();
  if (reset_ || stream_over_ || !t) {
    errno = refused_ ? ECONNREFUSED : reset_ ? ECONNRESET : EPIPE;
    return -1;
  }
  TunnelSession& s = t->session();
  const size_t k = open_ ? std::min(n, s.SendRoom(id_)) : 0;
  if (k == 0) {
    errno = EAGAIN;  // on_send_space (or StartReading) tells when
    return -1;
  }
  std::memcpy(s.SendSpace(id_, k), data, k);
  s.CommitSend(id_, k);
  worker_->stats().Add(Stat::kBytesToPeer, k);
  t->FlushSoon();  // with what other streams send in this batch
  return static_cast<ssize_t>(k);
}

void L7StreamLeg::ShutdownWrite() {
  if (write_shut_ || closed_) return;
  write_shut_ = true;
  auto t = tunnel_.lock();
  if (!t || stream_over_ || reset_) return;
  t->session().CloseWrite(id_);
  t->Flush();
}

void L7StreamLeg::Close(bool reset) {
  if (closed_) return;
  // Unread bytes are dropped and their window handed back (the peer is
  // not left waiting for it); the answer before this end's END_STREAM
  // still goes whole.
  DropInput();
  if (reset || reset_) {
    closed_ = true;
    watcher_ = nullptr;
    return ResetStream();
  }
  // A clean end: this end's END_STREAM. The stream lives on in the tunnel
  // until the peer's end (bytes it still sends then get a reset, as a
  // closed socket's RST).
  ShutdownWrite();
  closed_ = true;
  watcher_ = nullptr;
}

void L7StreamLeg::DropInput() {
  if (!in_.empty())
    if (auto t = tunnel_.lock()) t->session().Consumed(id_, in_.size());
  in_.clear();
  in_.Release();
}

void L7StreamLeg::ResetStream() {
  if (stream_over_) return;
  auto self = shared_from_this();  // Forget may drop the tunnel's hold on it
  stream_over_ = true;
  reset_ = true;
  auto t = tunnel_.lock();
  if (!t) return;
  t->session().Reset(id_, NGHTTP2_CANCEL);
  t->Flush();
  t->Forget(id_);
}

}  // namespace shunt::proxy
