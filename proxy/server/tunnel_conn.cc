#include "proxy/server/tunnel_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/lib/fmt_absl.h"
#include "proxy/common/socket_ops.h"
#include "proxy/server/pod_leg.h"
#include "proxy/server/worker.h"
#include "spdlog/spdlog.h"

namespace shunt::proxy {
namespace {

int64_t NowMicros() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

}  // namespace

TunnelConn::TunnelConn(Worker* worker, Role role, std::shared_ptr<TlsContext> tls,
                       lib::UniqueFd socket)
    : worker_(worker), role_(role), tls_ctx_(std::move(tls)), socket_(std::move(socket)) {
  auto ch = TlsChannel::Create(tls_ctx_);
  auto s = TunnelSession::Create(
      role == Role::kClient ? TunnelSession::Role::kClient : TunnelSession::Role::kServer, {},
      SessionEvents());
  if (!ch.ok() || !s.ok()) {
    spdlog::error("tunnel: {}", !ch.ok() ? ch.status().message() : s.status().message());
    failed_ = true;
    return;
  }
  tls_ = *std::move(ch);
  session_ = *std::move(s);
}

TunnelConn::~TunnelConn() {
  CancelTimer();
  if (socket_.valid()) worker_->loop().Unwatch(socket_.get());
}

std::shared_ptr<TunnelConn> TunnelConn::Client(Worker* worker, std::shared_ptr<TlsContext> tls,
                                               std::string identity, const Destination& peer) {
  std::shared_ptr<TunnelConn> t(
      new TunnelConn(worker, Role::kClient, std::move(tls), lib::UniqueFd()));
  t->identity_ = std::move(identity);
  t->peer_ = peer;
  return t;
}

std::shared_ptr<TunnelConn> TunnelConn::Server(Worker* worker, std::shared_ptr<TlsContext> tls,
                                               lib::UniqueFd socket) {
  return std::shared_ptr<TunnelConn>(
      new TunnelConn(worker, Role::kServer, std::move(tls), std::move(socket)));
}

std::string TunnelConn::peer_address() const {
  if (std::string text = PeerAddressText(socket_.get()); !text.empty()) return text;
  return role_ == Role::kClient ? peer_.AddressText() : std::string();
}

TunnelSession::Events TunnelConn::SessionEvents() {
  TunnelSession::Events e;
  e.on_connect = [this](int32_t id, absl::string_view authority) {
    worker_->OnConnect(shared_from_this(), id, authority);
  };
  e.on_response = [this](int32_t id, int status) {
    auto it = legs_.find(id);
    if (it == legs_.end()) return;
    if (status == 200) {
      it->second->StartReading();
      return;
    }
    worker_->stats().Add(Stat::kStreamsRefusedByPeer);
    std::shared_ptr<StreamLeg> leg = std::move(it->second);
    legs_.erase(it);
    leg->Abort();
  };
  e.on_data = [this](int32_t id, absl::string_view data) {
    auto it = legs_.find(id);
    if (it == legs_.end()) {
      session_->Consumed(id, data.size());
      return;
    }
    it->second->OnData(data);
  };
  e.on_peer_eof = [this](int32_t id) {
    if (auto it = legs_.find(id); it != legs_.end()) it->second->OnPeerEof();
  };
  e.on_close = [this](int32_t id, uint32_t error_code) {
    auto it = legs_.find(id);
    // A leg that reset its stream was forgotten then: the tunnel may be
    // idle (or drained) now all the same.
    if (it == legs_.end()) return CloseIfIdle();
    std::shared_ptr<StreamLeg> leg = std::move(it->second);
    legs_.erase(it);
    leg->OnStreamClosed(error_code);
    CloseIfIdle();
  };
  e.on_send_space = [this](int32_t id) {
    if (auto it = legs_.find(id); it != legs_.end()) it->second->OnSendSpace();
  };
  return e;
}

void TunnelConn::SetTimer(int ms, void (*fire)(TunnelConn&)) {
  CancelTimer();
  timer_ = worker_->loop().After(std::chrono::milliseconds(ms), [weak = weak_from_this(), fire] {
    auto self = weak.lock();
    if (!self) return;
    self->timer_ = 0;
    fire(*self);
  });
}

void TunnelConn::CancelTimer() {
  if (timer_ != 0) worker_->loop().Cancel(timer_);
  timer_ = 0;
}

void TunnelConn::Start() {
  if (failed_) {
    worker_->TunnelDone(this);
    return;
  }
  started_us_ = NowMicros();
  SetTimer(worker_->shared().options.handshake_timeout_ms, [](TunnelConn& t) {
    if (t.established() || t.failed_) return;
    if (t.role_ == Role::kServer) {
      t.worker_->stats().Add(Stat::kInboundHandshakeTimeouts);
      t.worker_->stats().Refuse({.reason = "handshake-timeout", .peer = t.peer_address()});
    }
    t.Fail("no handshake in time");
  });
  if (role_ == Role::kServer) {
    if (absl::Status st = worker_->loop().Watch(socket_.get(), this, 0); !st.ok())
      return Fail(std::string(st.message()));
    return OnConnected(0);
  }
  socklen_t len = 0;
  const sockaddr_storage ss = ToSockaddr(peer_, &len);
  socket_.Reset(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!socket_.valid()) return Fail(absl::StrCat("socket: ", strerror(errno)));
  SetNoDelay(socket_.get());
  if (absl::Status st = worker_->loop().Watch(socket_.get(), this, 0); !st.ok())
    return Fail(std::string(st.message()));
  if (connect(socket_.get(), reinterpret_cast<const sockaddr*>(&ss), len) == 0 ||
      errno == EINPROGRESS) {
    connecting_ = true;  // told by the socket turning writable
    UpdateInterest();
    return;
  }
  // Failed at once (a local refusal): reported as a completion would be,
  // after the caller has put its first stream on this tunnel.
  const int error = errno;
  worker_->loop().Later([self = shared_from_this(), error] { self->OnConnected(error); });
}

void TunnelConn::OnConnected(int error) {
  connecting_ = false;
  if (failed_) return;
  if (error != 0) {
    // Permissive mode: a node that refuses the tunnel runs no proxy (a
    // meshless node); its pods are reached in plaintext, as without mTLS.
    // Only a refused connect: a failed handshake never downgrades.
    if (error == ECONNREFUSED && worker_->shared().runtime.Get()->config.mode == "permissive") {
      worker_->MarkMeshless(peer_.AddressText());
      auto legs = std::move(legs_);
      legs_.clear();
      // (Client tunnels carry pod sockets only; anything else is reset.)
      for (auto& [id, leg] : legs) {
        if (auto pod = std::dynamic_pointer_cast<PodLeg>(leg))
          worker_->RelayPlain(pod);
        else
          leg->Abort();
      }
    }
    Fail(absl::StrCat("connect to ", peer_.ToAuthority(), ": ", strerror(error)));
    return;
  }
  connected_ = true;
  if (role_ == Role::kServer) SetNoDelay(socket_.get());
  UpdateInterest();
  Flush();  // a client's ClientHello
}

void TunnelConn::UpdateInterest() {
  if (failed_ || !socket_.valid()) return;
  const uint32_t want =
      connecting_ ? EPOLLOUT : (connected_ ? EPOLLIN | (write_blocked_ ? EPOLLOUT : 0u) : 0u);
  worker_->loop().Interest(socket_.get(), want);
}

void TunnelConn::OnEvents(uint32_t events) {
  // Whatever this call ends, the tunnel lives until it returns.
  auto self = shared_from_this();
  if (failed_) return;
  if (connecting_) {
    return OnConnected(ConnectResult(socket_.get()));
  }
  if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR) && write_blocked_) {
    write_blocked_ = false;
    UpdateInterest();
    Flush();  // the rest, and what nghttp2 held back
  }
  if (!failed_ && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) OnReadable();
}

void TunnelConn::OnReadable() {
  // A few reads per wake-up, then the other connections get their turn.
  for (int i = 0; i < 4 && !failed_; ++i) {
    const ssize_t n = recv(socket_.get(), worker_->scratch(), Worker::kScratch, 0);
    if (n == 0) return Fail("the peer closed the connection");
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      return Fail(absl::StrCat("read: ", strerror(errno)));
    }
    const bool was_established = tls_->established();
    if (absl::Status st = tls_->Feed({worker_->scratch(), static_cast<size_t>(n)}); !st.ok()) {
      tls_->TakeOutput(&out_);  // the alert, if any
      WriteOut();
      if (role_ == Role::kServer) {
        worker_->stats().Add(Stat::kInboundHandshakeRefused);
        const char* reason = tls_->refusal() == certs::Refusal::kNone
                                 ? "tls-handshake-failed"
                                 : certs::RefusalName(tls_->refusal());
        worker_->stats().Refuse({.reason = reason, .peer = peer_address()});
      }
      return Fail(std::string(st.message()));
    }
    if (!was_established && tls_->established()) OnHandshake();
    if (tls_->established()) {
      plain_in_.clear();
      const bool open = tls_->Read(&plain_in_);
      if (!plain_in_.empty()) {
        receiving_ = true;
        absl::Status st = session_->Receive(plain_in_.view());
        receiving_ = false;
        // One write per pod connection for all the DATA of this read,
        // while plain_in_ still holds it.
        for (auto& leg : batched_) leg->FlushBatch();
        batched_.clear();
        if (!st.ok()) {
          if (role_ == Role::kServer)
            worker_->stats().Refuse({.reason = "protocol-error", .peer = tls_->peer().Uri()});
          Flush();  // GOAWAY
          return Fail(std::string(st.message()));
        }
      }
      if (!open) return Fail("the peer closed TLS");
    }
    if (static_cast<size_t>(n) < Worker::kScratch) break;
  }
  Flush();
}

void TunnelConn::OnHandshake() {
  CancelTimer();
  if (role_ == Role::kClient) {
    worker_->stats().Add(Stat::kTunnelsOpened);
    worker_->stats().Add(Stat::kHandshakeMicrosTotal,
                         static_cast<uint64_t>(NowMicros() - started_us_));
  } else {
    peer_identity_ = absl::StrCat(tls_->peer().ns, "/", tls_->peer().service_account);
    worker_->stats().Add(Stat::kInboundTunnels);
  }
}

void TunnelConn::Flush() {
  if (failed_ || !connected_ || receiving_) return;
  // A peer that does not read: frames stay queued in nghttp2 (whose limits
  // on queued control frames then end a flood) rather than here.
  if (tls_->established() && out_.size() < kMaxUnsent) {
    plain_out_.clear();
    session_->TakeOutput(&plain_out_);
    if (!plain_out_.empty()) {
      if (absl::Status st = tls_->Write(plain_out_.view()); !st.ok())
        return Fail(std::string(st.message()));
    }
  }
  tls_->TakeOutput(&out_);
  WriteOut();
  // nghttp2 wants neither to read nor to write: the session is over (the
  // peer broke the protocol and got a GOAWAY, or both ends are done).
  if (!failed_ && tls_->established() && !session_->alive()) {
    if (role_ == Role::kServer && session_->goaway_error() != 0)
      worker_->stats().Refuse({.reason = "protocol-error", .peer = tls_->peer().Uri()});
    Fail("the HTTP/2 session is over");
  }
}

void TunnelConn::FlushSoon() {
  if (flush_soon_) return;
  flush_soon_ = true;
  worker_->loop().Later(weak_from_this(), [](void* self) {
    auto* t = static_cast<TunnelConn*>(self);
    t->flush_soon_ = false;
    t->Flush();
  });
}

void TunnelConn::WriteOut() {
  // Blocked: the socket says when it takes more.
  if (write_blocked_ || !connected_ || failed_) return;
  while (!out_.empty()) {
    const ssize_t n = send(socket_.get(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.Consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      write_blocked_ = true;
      UpdateInterest();
      return;
    }
    Fail(absl::StrCat("write: ", strerror(errno)));
    return;
  }
}

bool TunnelConn::usable() const {
  return !failed_ && !draining_ && session_ &&
         (role_ == Role::kClient ? session_->can_open() : session_->alive());
}

bool TunnelConn::Open(const std::shared_ptr<StreamLeg>& leg, const std::string& authority,
                      const std::string& forwarded) {
  if (!usable()) return false;
  auto id = session_->OpenStream(authority, forwarded);
  if (!id.ok()) return false;
  legs_[*id] = leg;
  leg->Attach(shared_from_this(), *id);
  worker_->stats().Add(Stat::kStreamsOpened);
  if (established()) {
    worker_->stats().Add(Stat::kStreamsOnWarmTunnel);
    CancelTimer();  // the idle timer
  }
  Flush();
  return true;
}

void TunnelConn::Connecting(int32_t id, const std::shared_ptr<StreamLeg>& leg) {
  if (failed_ || !session_->has_stream(id)) {
    leg->Abort();
    return;
  }
  legs_[id] = leg;
  leg->Attach(shared_from_this(), id);
}

void TunnelConn::Accept(int32_t id) {
  auto it = legs_.find(id);
  if (failed_ || it == legs_.end()) return;
  std::shared_ptr<StreamLeg> leg = it->second;
  session_->Accept(id);
  Flush();
  leg->StartReading();
}

void TunnelConn::Refuse(int32_t id, int http_status) {
  if (failed_) return;
  if (auto it = legs_.find(id); it != legs_.end()) {
    std::shared_ptr<StreamLeg> leg = std::move(it->second);
    legs_.erase(it);
    leg->Abort();
  }
  session_->Refuse(id, http_status);
  Flush();
}

void TunnelConn::Drain() {
  draining_ = true;
  CloseIfIdle();
}

void TunnelConn::CloseIfIdle() {
  if (failed_ || !legs_.empty()) return;
  if (draining_) {
    session_->Shutdown();
    Flush();
    tls_->Close();
    tls_->TakeOutput(&out_);
    WriteOut();
    return Fail("drained");
  }
  if (role_ != Role::kClient || !established()) return;
  // An idle client tunnel stays warm for a while, then goes.
  SetTimer(worker_->shared().options.idle_tunnel_ms, [](TunnelConn& t) {
    if (t.legs_.empty()) t.Drain();
  });
}

void TunnelConn::Fail(const std::string& why) {
  if (failed_ && !socket_.valid()) return;
  const bool was_failed = failed_;
  failed_ = true;
  if (role_ == Role::kClient && !established() && !was_failed)
    worker_->stats().Add(Stat::kTunnelHandshakeFailures);
  if (why != "drained")
    spdlog::debug("tunnel {} {}: {}", role_ == Role::kClient ? "to" : "from", peer_address(), why);
  CancelTimer();
  auto legs = std::move(legs_);
  legs_.clear();
  for (auto& [id, leg] : legs) leg->Abort();
  if (socket_.valid()) {
    worker_->loop().Unwatch(socket_.get());
    socket_.Reset();
  }
  connected_ = false;
  worker_->TunnelDone(this);
}

}  // namespace shunt::proxy
