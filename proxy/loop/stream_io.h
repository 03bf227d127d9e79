// One end of a byte stream the L7 layer reads and writes: a socket watched
// by the thread's EventLoop, or an in-process channel (a tunnel stream
// that ends on this node, proxy/server/l7_stream_leg.h). The HTTP code
// reads, writes and waits the same way on either.
//
// Why a channel: a request that arrived through the mTLS tunnel was handed
// to the HTTP layer through a socketpair, one more send and recv each way
// per request (4 of the receiving proxy's ~8.4 system calls per request in
// shunt-l7-bench's shunt-mtls arm) and a wake-up for each; through a
// channel the bytes go from the tunnel's buffer to the HTTP parser's
// without the kernel.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "agent/lib/unique_fd.h"
#include "proxy/loop/event_loop.h"

namespace shunt::proxy {

// An in-process stream end with a socket's manners.
class ByteChannel {
 public:
  virtual ~ByteChannel() = default;
  // As EventLoop::Watch and Interest for a socket: `w` is told of EPOLLIN
  // (bytes, the end or a reset to read) and EPOLLOUT (room to write)
  // while it wants them, level-triggered, from the loop (never from
  // inside a call of its own to this channel).
  virtual void Watch(EventLoop::Watcher* w, uint32_t interest) = 0;
  virtual void Interest(uint32_t interest) = 0;
  virtual void Unwatch() = 0;
  // As recv(2) and send(2): bytes; 0 at the end; -1 with errno EAGAIN
  // (nothing now), ECONNREFUSED (the far end refused it before it
  // opened), ECONNRESET (the stream was reset) or EPIPE (writing after
  // the end).
  virtual ssize_t Recv(char* buf, size_t n) = 0;
  virtual ssize_t Send(const char* data, size_t n) = 0;
  // No more bytes from this end: the far end reads the end after them.
  virtual void ShutdownWrite() = 0;
  // Done with it (nothing is told any more). `reset`: the far end is told of a
  // reset, not a clean end.
  virtual void Close(bool reset) = 0;
};

class StreamIo {
 public:
  StreamIo() = default;
  explicit StreamIo(lib::UniqueFd fd) : fd_(std::move(fd)) {}
  explicit StreamIo(std::shared_ptr<ByteChannel> channel) : channel_(std::move(channel)) {}
  StreamIo(StreamIo&& o) noexcept : fd_(std::move(o.fd_)), channel_(std::move(o.channel_)) {}
  StreamIo& operator=(StreamIo&& o) noexcept {
    if (this != &o) {
      Close(false);
      fd_ = std::move(o.fd_);
      channel_ = std::move(o.channel_);
    }
    return *this;
  }
  StreamIo(const StreamIo&) = delete;
  StreamIo& operator=(const StreamIo&) = delete;
  ~StreamIo() { Close(false); }

  bool valid() const { return fd_.valid() || channel_ != nullptr; }
  // The socket; -1 for a channel (no socket options apply to it).
  int fd() const { return fd_.get(); }
  bool is_channel() const { return channel_ != nullptr; }

  absl::Status Watch(EventLoop& loop, EventLoop::Watcher* w, uint32_t interest);
  void Interest(EventLoop& loop, uint32_t interest);
  void Unwatch(EventLoop& loop);
  ssize_t Recv(char* buf, size_t n);
  ssize_t Send(const char* data, size_t n);
  void ShutdownWrite();
  // Closes it (Unwatch first): a socket closes (with RST when `reset`), a
  // channel's far end is told of the end or a reset.
  void Close(bool reset);
  // The socket, handed on (a channel cannot be).
  lib::UniqueFd TakeFd() { return std::move(fd_); }

 private:
  lib::UniqueFd fd_;
  std::shared_ptr<ByteChannel> channel_;
};

}  // namespace shunt::proxy
