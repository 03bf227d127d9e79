#include "proxy/loop/stream_io.h"

#include <sys/socket.h>

#include <cerrno>

#include "proxy/common/socket_ops.h"

namespace shunt::proxy {

absl::Status StreamIo::Watch(EventLoop& loop, EventLoop::Watcher* w, uint32_t interest) {
  if (channel_) {
    channel_->Watch(w, interest);
    return absl::OkStatus();
  }
  return loop.Watch(fd_.get(), w, interest);
}

void StreamIo::Interest(EventLoop& loop, uint32_t interest) {
  if (channel_) return channel_->Interest(interest);
  if (fd_.valid()) loop.Interest(fd_.get(), interest);
}

void StreamIo::Unwatch(EventLoop& loop) {
  if (channel_) return channel_->Unwatch();
  if (fd_.valid()) loop.Unwatch(fd_.get());
}

ssize_t StreamIo::Recv(char* buf, size_t n) {
  if (channel_) return channel_->Recv(buf, n);
  return recv(fd_.get(), buf, n, 0);
}

ssize_t StreamIo::Send(const char* data, size_t n) {
  if (channel_) return channel_->Send(data, n);
  return send(fd_.get(), data, n, MSG_NOSIGNAL);
}

void StreamIo::ShutdownWrite() {
  if (channel_) return channel_->ShutdownWrite();
  if (fd_.valid()) shutdown(fd_.get(), SHUT_WR);
}

void StreamIo::Close(bool reset) {
  if (channel_) {
    std::shared_ptr<ByteChannel> c = std::move(channel_);
    channel_.reset();
    c->Close(reset);
    return;
  }
  if (!fd_.valid()) return;
  if (reset) ResetOnClose(fd_.get());
  fd_.Reset();
}

}  // namespace shunt::proxy
