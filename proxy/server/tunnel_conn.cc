#include "proxy/server/tunnel_conn.h"

#include <sys/socket.h>
#include <time.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "agent/lib/fmt_absl.h"
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
                       asio::ip::tcp::socket socket)
    : worker_(worker),
      role_(role),
      tls_ctx_(std::move(tls)),
      socket_(std::move(socket)),
      timer_(worker->io()) {
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

TunnelConn::~TunnelConn() = default;

std::shared_ptr<TunnelConn> TunnelConn::Client(Worker* worker, std::shared_ptr<TlsContext> tls,
                                               std::string identity, asio::ip::tcp::endpoint peer) {
  std::shared_ptr<TunnelConn> t(
      new TunnelConn(worker, Role::kClient, std::move(tls), asio::ip::tcp::socket(worker->io())));
  t->identity_ = std::move(identity);
  t->peer_ = peer;
  return t;
}

std::shared_ptr<TunnelConn> TunnelConn::Server(Worker* worker, std::shared_ptr<TlsContext> tls,
                                               asio::ip::tcp::socket socket) {
  return std::shared_ptr<TunnelConn>(
      new TunnelConn(worker, Role::kServer, std::move(tls), std::move(socket)));
}

std::string TunnelConn::peer_address() const {
  asio::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  return ec ? peer_.address().to_string() : ep.address().to_string();
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
    std::shared_ptr<PodLeg> leg = std::move(it->second);
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
    if (it == legs_.end()) return;
    std::shared_ptr<PodLeg> leg = std::move(it->second);
    legs_.erase(it);
    leg->OnStreamClosed(error_code);
    CloseIfIdle();
  };
  e.on_send_space = [this](int32_t id) {
    if (auto it = legs_.find(id); it != legs_.end()) it->second->OnSendSpace();
  };
  return e;
}

void TunnelConn::Start() {
  if (failed_) {
    worker_->TunnelDone(this);
    return;
  }
  started_us_ = NowMicros();
  timer_.expires_after(std::chrono::milliseconds(worker_->shared().options.handshake_timeout_ms));
  timer_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->established() || self->failed_) return;
    if (self->role_ == Role::kServer) {
      self->worker_->stats().Add(Stat::kInboundHandshakeTimeouts);
      self->worker_->stats().Refuse({.reason = "handshake-timeout", .peer = self->peer_address()});
    }
    self->Fail("no handshake in time");
  });
  if (role_ == Role::kClient) {
    socket_.async_connect(
        peer_, [self = shared_from_this()](const asio::error_code& ec) { self->OnConnected(ec); });
    return;
  }
  OnConnected({});
}

void TunnelConn::OnConnected(const asio::error_code& ec) {
  if (failed_) return;
  if (ec) {
    // Permissive mode: a node that refuses the tunnel runs no proxy (a
    // meshless node); its pods are reached in plaintext, as without mTLS.
    // Only a refused connect: a failed handshake never downgrades.
    if (ec == asio::error::connection_refused &&
        worker_->shared().runtime.Get()->config.mode == "permissive") {
      worker_->MarkMeshless(peer_.address().to_string());
      auto legs = std::move(legs_);
      legs_.clear();
      for (auto& [id, leg] : legs) worker_->RelayPlain(leg);
    }
    Fail(absl::StrCat("connect to ", peer_.address().to_string(), ":", peer_.port(), ": ",
                      ec.message()));
    return;
  }
  connected_ = true;
  asio::error_code ignored;
  socket_.non_blocking(true, ignored);
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  Flush();  // a client's ClientHello
  ArmRead();
}

void TunnelConn::ArmRead() {
  if (read_armed_ || failed_) return;
  read_armed_ = true;
  socket_.async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this()](const asio::error_code& ec) {
                       self->read_armed_ = false;
                       if (!ec) self->OnReadable();
                     });
}

void TunnelConn::OnReadable() {
  // A few reads per wake-up, then the other connections get their turn.
  for (int i = 0; i < 4 && !failed_; ++i) {
    const ssize_t n = recv(socket_.native_handle(), worker_->scratch(), Worker::kScratch, 0);
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
  ArmRead();
}

void TunnelConn::OnHandshake() {
  timer_.cancel();
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

void TunnelConn::WriteOut() {
  if (write_armed_ || !connected_) return;
  while (!out_.empty()) {
    const ssize_t n = send(socket_.native_handle(), out_.data(), out_.size(), MSG_NOSIGNAL);
    if (n > 0) {
      out_.Consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      write_armed_ = true;
      socket_.async_wait(asio::ip::tcp::socket::wait_write,
                         [self = shared_from_this()](const asio::error_code& ec) {
                           self->write_armed_ = false;
                           if (!ec) self->Flush();  // the rest, and what nghttp2 held back
                         });
      return;
    }
    if (!failed_) Fail(absl::StrCat("write: ", strerror(errno)));
    return;
  }
}

bool TunnelConn::usable() const {
  return !failed_ && !draining_ && session_ &&
         (role_ == Role::kClient ? session_->can_open() : session_->alive());
}

bool TunnelConn::Open(const std::shared_ptr<PodLeg>& leg, const std::string& authority,
                      const std::string& forwarded) {
  if (!usable()) return false;
  auto id = session_->OpenStream(authority, forwarded);
  if (!id.ok()) return false;
  legs_[*id] = leg;
  leg->Attach(shared_from_this(), *id);
  worker_->stats().Add(Stat::kStreamsOpened);
  if (established()) {
    worker_->stats().Add(Stat::kStreamsOnWarmTunnel);
    timer_.cancel();  // the idle timer
  }
  Flush();
  return true;
}

void TunnelConn::Accept(int32_t id, const std::shared_ptr<PodLeg>& leg) {
  if (failed_ || !session_->has_stream(id)) {
    leg->Abort();
    return;
  }
  legs_[id] = leg;
  leg->Attach(shared_from_this(), id);
  session_->Accept(id);
  Flush();
  leg->StartReading();
}

void TunnelConn::Refuse(int32_t id, int http_status) {
  if (failed_) return;
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
  timer_.expires_after(std::chrono::milliseconds(worker_->shared().options.idle_tunnel_ms));
  timer_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
    auto self = weak.lock();
    if (!ec && self && self->legs_.empty()) self->Drain();
  });
}

void TunnelConn::Fail(const std::string& why) {
  if (failed_ && !socket_.is_open()) return;
  const bool was_failed = failed_;
  failed_ = true;
  if (role_ == Role::kClient && !established() && !was_failed)
    worker_->stats().Add(Stat::kTunnelHandshakeFailures);
  if (why != "drained")
    spdlog::debug("tunnel {} {}: {}", role_ == Role::kClient ? "to" : "from", peer_address(), why);
  timer_.cancel();
  auto legs = std::move(legs_);
  legs_.clear();
  for (auto& [id, leg] : legs) leg->Abort();
  asio::error_code ec;
  socket_.close(ec);
  worker_->TunnelDone(this);
}

}  // namespace shunt::proxy
