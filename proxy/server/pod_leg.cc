#include "proxy/server/pod_leg.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "proxy/common/socket_ops.h"
#include "proxy/server/tunnel_conn.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {

PodLeg::PodLeg(Worker* worker, lib::UniqueFd socket) : worker_(worker), socket_(std::move(socket)) {
  SetNoDelay(fd());
}

std::shared_ptr<PodLeg> PodLeg::Make(Worker* worker, lib::UniqueFd socket) {
  std::shared_ptr<PodLeg> leg(new PodLeg(worker, std::move(socket)));
  // No interest yet: nothing is read before the stream is open.
  if (!worker->loop().Watch(leg->fd(), leg.get(), 0).ok()) {
    leg->closed_ = true;
    leg->socket_.Reset();
    return nullptr;
  }
  return leg;
}

PodLeg::~PodLeg() {
  if (socket_.valid()) worker_->loop().Unwatch(fd());
}

void PodLeg::AwaitConnect(std::function<void(int error)> done) {
  connect_done_ = std::move(done);
  UpdateInterest();
}

void PodLeg::Attach(const std::shared_ptr<TunnelConn>& tunnel, int32_t stream_id) {
  tunnel_ = tunnel;
  id_ = stream_id;
}

lib::UniqueFd PodLeg::TakeSocket() {
  if (reading_ || closed_) return lib::UniqueFd();
  closed_ = true;  // this leg is done; the socket lives on elsewhere
  worker_->loop().Unwatch(fd());
  return std::move(socket_);
}

void PodLeg::StartReading() {
  if (reading_ || closed_) return;
  reading_ = true;
  UpdateInterest();  // what the pod sent already is reported at once
}

void PodLeg::UpdateInterest() {
  if (closed_) return;
  uint32_t want = 0;
  if (connect_done_) {
    want = EPOLLOUT;
  } else {
    if (reading_ && !read_paused_ && !read_eof_) want |= EPOLLIN;
    if (to_pod_off_ < to_pod_.size()) want |= EPOLLOUT;
  }
  worker_->loop().Interest(fd(), want);
}

void PodLeg::OnEvents(uint32_t events) {
  // Whatever this call ends (the stream, the tunnel's hold on this leg),
  // the leg lives until it returns.
  auto self = shared_from_this();
  if (closed_) return;
  if (connect_done_) {
    const int err = ConnectResult(fd());
    auto done = std::move(connect_done_);
    connect_done_ = nullptr;
    done(err);
    UpdateInterest();
    return;
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && to_pod_off_ < to_pod_.size()) FlushToPod();
  if (closed_) return;
  if ((events == 0 || (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) && reading_ &&
      !read_paused_ && !read_eof_)
    OnReadable();
}

void PodLeg::OnReadable() {
  auto tunnel = tunnel_.lock();
  if (closed_ || !tunnel) return;
  TunnelSession& s = tunnel->session();
  // A few reads per wake-up while the pod keeps the socket full, so bulk
  // transfers frame and encrypt in large batches; then the others' turn.
  for (int i = 0; i < 4; ++i) {
    const size_t limit = std::min(s.SendRoom(id_), Worker::kScratch);
    char* space = limit ? s.SendSpace(id_, limit) : nullptr;
    if (!space) {
      read_paused_ = true;  // OnSendSpace resumes
      break;
    }
    // Straight into the stream's queue, from which the DATA frame is made.
    const ssize_t n = recv(fd(), space, limit, 0);
    if (n > 0) {
      s.CommitSend(id_, static_cast<size_t>(n));
      worker_->stats().Add(Stat::kBytesToPeer, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < limit) break;  // drained
      continue;
    }
    if (n == 0) {
      read_eof_ = true;
      s.CloseWrite(id_);
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
    // The pod's connection broke (reset): so does the stream.
    s.Reset(id_, NGHTTP2_CANCEL);
    tunnel->Flush();
    Close(/*reset=*/true);
    return;
  }
  tunnel->FlushSoon();  // with the other legs' of this batch
  UpdateInterest();     // paused or at EOF: no more reading for now
}

void PodLeg::OnSendSpace() {
  if (!read_paused_) return;
  read_paused_ = false;
  UpdateInterest();
}

void PodLeg::OnData(absl::string_view data) {
  if (closed_) {
    if (auto t = tunnel_.lock()) t->session().Consumed(id_, data.size());
    return;
  }
  worker_->stats().Add(Stat::kBytesFromPeer, data.size());
  if (to_pod_off_ < to_pod_.size() || connect_done_) {
    // The pod is behind (or not connected yet): the bytes wait in order.
    to_pod_.append(data.data(), data.size());
    UpdateInterest();
    return;
  }
  if (batch_.empty())
    if (auto t = tunnel_.lock()) t->Batched(shared_from_this());
  batch_.push_back({const_cast<char*>(data.data()), data.size()});
  if (batch_.size() >= 64) FlushBatch();
}

void PodLeg::FlushBatch() {
  if (batch_.empty()) return;
  auto tunnel = tunnel_.lock();
  size_t total = 0;
  for (const iovec& v : batch_) total += v.iov_len;
  if (closed_) {
    if (tunnel) tunnel->session().Consumed(id_, total);
    batch_.clear();
    return;
  }
  msghdr m{};
  m.msg_iov = batch_.data();
  m.msg_iovlen = batch_.size();
  const ssize_t n = sendmsg(fd(), &m, MSG_NOSIGNAL);
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
    batch_.clear();
    if (tunnel) {
      tunnel->session().Consumed(id_, total);
      tunnel->session().Reset(id_, NGHTTP2_CANCEL);
    }
    Close(/*reset=*/true);
    return;
  }
  size_t sent = n > 0 ? static_cast<size_t>(n) : 0;
  if (sent > 0 && tunnel) tunnel->session().Consumed(id_, sent);
  // What the pod did not take yet waits here, in order.
  for (const iovec& v : batch_) {
    if (sent >= v.iov_len) {
      sent -= v.iov_len;
      continue;
    }
    to_pod_.append(static_cast<const char*>(v.iov_base) + sent, v.iov_len - sent);
    sent = 0;
  }
  batch_.clear();
  if (to_pod_off_ < to_pod_.size()) UpdateInterest();
}

void PodLeg::FlushToPod() {
  if (closed_) return;
  auto tunnel = tunnel_.lock();
  while (to_pod_off_ < to_pod_.size()) {
    const ssize_t n =
        send(fd(), to_pod_.data() + to_pod_off_, to_pod_.size() - to_pod_off_, MSG_NOSIGNAL);
    if (n > 0) {
      to_pod_off_ += static_cast<size_t>(n);
      if (tunnel) tunnel->session().Consumed(id_, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      UpdateInterest();
      if (tunnel) tunnel->FlushSoon();  // window updates for what went out
      return;
    }
    if (tunnel) {
      tunnel->session().Reset(id_, NGHTTP2_CANCEL);
      tunnel->Flush();
    }
    Close(/*reset=*/true);
    return;
  }
  to_pod_.clear();
  to_pod_.shrink_to_fit();  // an idle connection keeps no buffer
  to_pod_off_ = 0;
  UpdateInterest();
  if (tunnel) tunnel->FlushSoon();
  if (peer_eof_) shutdown(fd(), SHUT_WR);
  if (stream_closed_) Close(/*reset=*/false);
}

void PodLeg::OnPeerEof() {
  FlushBatch();
  peer_eof_ = true;
  if (to_pod_off_ == to_pod_.size() && !closed_) shutdown(fd(), SHUT_WR);
}

void PodLeg::OnStreamClosed(uint32_t error_code) {
  FlushBatch();  // what came before the end goes first
  if (error_code != 0) {
    Close(/*reset=*/true);
    return;
  }
  stream_closed_ = true;
  if (to_pod_off_ == to_pod_.size()) Close(/*reset=*/false);
}

void PodLeg::Abort() { Close(/*reset=*/true); }

void PodLeg::Close(bool reset) {
  if (closed_) return;
  closed_ = true;
  if (reset) {
    ResetOnClose(fd());  // as the far end's reset did
  }
  worker_->loop().Unwatch(fd());
  socket_.Reset();
  if (!batch_.empty()) {
    size_t total = 0;
    for (const iovec& v : batch_) total += v.iov_len;
    batch_.clear();
    if (auto t = tunnel_.lock()) t->session().Consumed(id_, total);
  }
  to_pod_.clear();
  to_pod_.shrink_to_fit();
  if (auto t = tunnel_.lock()) t->Forget(id_);
}

}  // namespace shunt::proxy
