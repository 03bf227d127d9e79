#include "proxy/server/plain_relay.h"

#include <sys/socket.h>

#include <cerrno>

#include "proxy/server/worker.h"

namespace shunt::proxy {

PlainRelay::PlainRelay(Worker* worker, asio::ip::tcp::socket pod)
    : worker_(worker), pod_(std::move(pod)), peer_(worker->io()) {}

void PlainRelay::Start(const Destination& to) {
  socklen_t len = 0;
  sockaddr_storage ss = ToSockaddr(to, &len);
  asio::ip::tcp::endpoint ep;
  memcpy(ep.data(), &ss, len);
  peer_.async_connect(ep, [self = shared_from_this()](const asio::error_code& ec) {
    if (ec) return self->Reset();
    asio::error_code ignored;
    for (auto* s : {&self->pod_, &self->peer_}) {
      s->non_blocking(true, ignored);
      s->set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    self->Arm(self->up_);
    self->Arm(self->down_);
  });
}

void PlainRelay::Arm(Side& s) {
  if (dead_ || s.eof) return;
  s.from->async_wait(asio::ip::tcp::socket::wait_read,
                     [self = shared_from_this(), &s](const asio::error_code& ec) {
                       if (!ec) self->Pump(s);
                     });
}

void PlainRelay::Pump(Side& s) {
  if (dead_) return;
  const ssize_t n = recv(s.from->native_handle(), worker_->scratch(), Worker::kScratch, 0);
  if (n == 0) {
    s.eof = true;
    shutdown(s.to->native_handle(), SHUT_WR);
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return Arm(s);
    return Reset();
  }
  const ssize_t w =
      send(s.to->native_handle(), worker_->scratch(), static_cast<size_t>(n), MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return Reset();
  const size_t sent = w > 0 ? static_cast<size_t>(w) : 0;
  if (sent == static_cast<size_t>(n)) return Arm(s);
  // The far side is slower: keep the rest, read no more until it is written.
  s.pending.assign(worker_->scratch() + sent, static_cast<size_t>(n) - sent);
  ArmWrite(s);
}

void PlainRelay::ArmWrite(Side& s) {
  s.to->async_wait(asio::ip::tcp::socket::wait_write, [self = shared_from_this(),
                                                       &s](const asio::error_code& ec) {
    if (ec || self->dead_) return;
    const ssize_t w = send(s.to->native_handle(), s.pending.data(), s.pending.size(), MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return self->Reset();
    if (w > 0) s.pending.erase(0, static_cast<size_t>(w));
    if (!s.pending.empty()) return self->ArmWrite(s);
    s.pending.shrink_to_fit();
    self->Arm(s);
  });
}

void PlainRelay::Reset() {
  if (dead_) return;
  dead_ = true;
  linger l{.l_onoff = 1, .l_linger = 0};
  asio::error_code ec;
  for (auto* s : {&pod_, &peer_}) {
    if (!s->is_open()) continue;
    setsockopt(s->native_handle(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    s->close(ec);
  }
}

}  // namespace shunt::proxy
