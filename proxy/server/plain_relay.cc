#include "proxy/server/plain_relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include "proxy/common/socket_ops.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {

PlainRelay::PlainRelay(Worker* worker, lib::UniqueFd pod) : worker_(worker) {
  pod_.relay = peer_.relay = this;
  pod_.fd = std::move(pod);
}

PlainRelay::~PlainRelay() {
  for (End* e : {&pod_, &peer_})
    if (e->fd.valid()) worker_->loop().Unwatch(e->fd.get());
}

void PlainRelay::Start(const Destination& to) {
  socklen_t len = 0;
  const sockaddr_storage ss = ToSockaddr(to, &len);
  peer_.fd.Reset(socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!peer_.fd.valid() || !worker_->loop().Watch(pod_.fd.get(), &pod_, 0).ok() ||
      !worker_->loop().Watch(peer_.fd.get(), &peer_, 0).ok())
    return Finish(/*reset=*/true);
  for (End* e : {&pod_, &peer_}) SetNoDelay(e->fd.get());
  if (connect(peer_.fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0 &&
      errno != EINPROGRESS)
    return Finish(/*reset=*/true);
  connecting_ = true;
  UpdateInterest();
}

void PlainRelay::UpdateInterest() {
  if (done_) return;
  if (connecting_) {
    worker_->loop().Interest(peer_.fd.get(), EPOLLOUT);
    return;
  }
  // Read an end while the other takes what it sends; write an end while
  // something waits for it.
  auto want = [](const End& e, const End& other) {
    uint32_t w = 0;
    if (!other.eof && other.pending.empty()) w |= EPOLLIN;
    if (!e.pending.empty()) w |= EPOLLOUT;
    return w;
  };
  worker_->loop().Interest(pod_.fd.get(), want(pod_, peer_));
  worker_->loop().Interest(peer_.fd.get(), want(peer_, pod_));
}

void PlainRelay::OnEvents(End& e, uint32_t events) {
  auto self = shared_from_this();
  if (done_) return;
  End& other = &e == &pod_ ? peer_ : pod_;
  if (connecting_) {
    if (ConnectResult(peer_.fd.get()) != 0) return Finish(/*reset=*/true);
    connecting_ = false;
    UpdateInterest();
    return;
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && !e.pending.empty() && !FlushPending(e)) return;
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && !other.eof &&
      other.pending.empty() && !Pump(e, other))
    return;
  if (pod_.eof && peer_.eof && pod_.pending.empty() && peer_.pending.empty())
    return Finish(/*reset=*/false);
  UpdateInterest();
}

bool PlainRelay::Pump(End& from, End& to) {
  const ssize_t n = recv(from.fd.get(), worker_->scratch(), Worker::kScratch, 0);
  if (n == 0) {
    to.eof = true;
    shutdown(to.fd.get(), SHUT_WR);
    return true;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
    Finish(/*reset=*/true);
    return false;
  }
  const ssize_t w = send(to.fd.get(), worker_->scratch(), static_cast<size_t>(n), MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    Finish(/*reset=*/true);
    return false;
  }
  const size_t sent = w > 0 ? static_cast<size_t>(w) : 0;
  // The far side is slower: keep the rest, read no more until it is written.
  if (sent < static_cast<size_t>(n))
    to.pending.assign(worker_->scratch() + sent, static_cast<size_t>(n) - sent);
  return true;
}

bool PlainRelay::FlushPending(End& to) {
  const ssize_t w = send(to.fd.get(), to.pending.data(), to.pending.size(), MSG_NOSIGNAL);
  if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
    Finish(/*reset=*/true);
    return false;
  }
  if (w > 0) to.pending.erase(0, static_cast<size_t>(w));
  if (to.pending.empty()) to.pending.shrink_to_fit();
  return true;
}

void PlainRelay::Finish(bool reset) {
  if (done_) return;
  done_ = true;
  for (End* e : {&pod_, &peer_}) {
    if (!e->fd.valid()) continue;
    if (reset) ResetOnClose(e->fd.get());
    worker_->loop().Unwatch(e->fd.get());
    e->fd.Reset();
  }
  worker_->RelayDone(this);
}

}  // namespace shunt::proxy
