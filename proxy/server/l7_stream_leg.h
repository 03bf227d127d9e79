// A tunnel stream that ends in this node's L7 layer (an HTTP-routes-only
// connection from a pod on another node, inbound.cc): the stream is the
// L7 layer's client connection, read and written in process through
// ByteChannel, where it used to be relayed to a socketpair whose other end
// the L7 layer read (two system calls more each way per request, and a
// wake-up for each: stream_io.h).
//
// Socket manners, so that L7Entry, H1Proxy and H2Proxy cannot tell it
// from a pod's socket: level-triggered readiness told from the loop, a
// FIN as the stream's END_STREAM both ways, a reset as a reset both ways,
// and the stream's flow control as the socket's buffers (what the L7 layer
// has not read yet is at most the stream's window; a full send buffer is
// EAGAIN until the tunnel says there is room).
#pragma once

#include <cstdint>
#include <memory>

#include "proxy/common/byte_buffer.h"
#include "proxy/loop/stream_io.h"
#include "proxy/server/stream_leg.h"

namespace shunt::proxy {

class Worker;

class L7StreamLeg : public StreamLeg,
                    public ByteChannel,
                    public std::enable_shared_from_this<L7StreamLeg> {
 public:
  explicit L7StreamLeg(Worker* worker) : worker_(worker) {}
  ~L7StreamLeg() override = default;
  L7StreamLeg(const L7StreamLeg&) = delete;
  L7StreamLeg& operator=(const L7StreamLeg&) = delete;

  // From the tunnel (StreamLeg).
  void Attach(const std::shared_ptr<TunnelConn>& tunnel, int32_t stream_id) override;
  void StartReading() override;
  void OnData(absl::string_view data) override;
  void FlushBatch() override {}  // OnData keeps its bytes at once
  void OnPeerEof() override;
  void OnStreamClosed(uint32_t error_code) override;
  void OnSendSpace() override;
  void Abort() override;

  // From the L7 layer (ByteChannel).
  void Watch(EventLoop::Watcher* w, uint32_t interest) override;
  void Interest(uint32_t interest) override;
  void Unwatch() override;
  ssize_t Recv(char* buf, size_t n) override;
  ssize_t Send(const char* data, size_t n) override;
  void ShutdownWrite() override;
  void Close(bool reset) override;

 private:
  // The events the watcher is to be told of now, as epoll would report
  // them for its interest.
  uint32_t Pending();
  // Tells the watcher from the loop, once per round however often asked.
  void Notify();
  static void Deliver(void* self);
  // The stream ends with a reset from this end (and is forgotten).
  void ResetStream();
  // Bytes the L7 layer will never read: dropped, and credited to the
  // tunnel (each byte the tunnel gave must be, once, or its window shrinks
  // for every stream on it).
  void DropInput();

  Worker* worker_;
  std::weak_ptr<TunnelConn> tunnel_;
  int32_t id_ = -1;
  EventLoop::Watcher* watcher_ = nullptr;
  uint32_t interest_ = 0;
  ByteBuffer in_;                // the stream's bytes the L7 layer has not read
  bool open_ = false;            // StartReading: bytes may go into the stream
  bool peer_eof_ = false;        // the peer's END_STREAM (after `in_`)
  bool reset_ = false;           // reset, or the tunnel failed
  bool refused_ = false;         // ... before it was open: ECONNREFUSED, as a connect
  bool write_shut_ = false;      // this end's END_STREAM is queued
  bool closed_ = false;          // the L7 layer is done with it
  bool stream_over_ = false;     // the tunnel forgot the stream
  bool notify_pending_ = false;  // a Deliver is queued
};

}  // namespace shunt::proxy
