// Where a tunnel stream is carried to on this node: a pod's socket
// (PodLeg), or the L7 layer in this same process (L7StreamLeg). The
// tunnel (TunnelConn) hands each stream's events to its leg through this.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/strings/string_view.h"

namespace shunt::proxy {

class TunnelConn;

class StreamLeg {
 public:
  virtual ~StreamLeg() = default;
  // The stream this connection is carried on.
  virtual void Attach(const std::shared_ptr<TunnelConn>& tunnel, int32_t stream_id) = 0;
  // The stream is open both ways (a client after the peer's 200, a
  // server once it accepted): bytes may go into it.
  virtual void StartReading() = 0;
  // The stream's bytes; valid until FlushBatch when the leg asked the
  // tunnel to batch (TunnelConn::Batched), else only during the call.
  virtual void OnData(absl::string_view data) = 0;
  virtual void FlushBatch() = 0;
  virtual void OnPeerEof() = 0;
  // The stream ended: 0 after both directions closed, else its reset's code.
  virtual void OnStreamClosed(uint32_t error_code) = 0;
  // The stream's send buffer has room again.
  virtual void OnSendSpace() = 0;
  // The tunnel failed or the peer refused the stream: a reset.
  virtual void Abort() = 0;
};

}  // namespace shunt::proxy
