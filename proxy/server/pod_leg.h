// One pod connection carried as one stream of a tunnel (either end): the
// socket's bytes become the stream's DATA, the stream's DATA is written to
// the socket, a FIN is END_STREAM both ways, a reset is a reset both ways.
// Nothing is buffered per connection while it is idle: reads go through the
// worker's scratch buffer, and only what the pod has not taken yet (at most
// the stream's window) waits here.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "agent/lib/unique_fd.h"
#include "proxy/loop/event_loop.h"
#include "proxy/server/stream_leg.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

class TunnelConn;
class Worker;

class PodLeg : public StreamLeg,
               public std::enable_shared_from_this<PodLeg>,
               public EventLoop::Watcher {
 public:
  // On the worker's loop; nullptr (the socket closed) if it cannot watch it.
  static std::shared_ptr<PodLeg> Make(Worker* worker, lib::UniqueFd socket);
  ~PodLeg();
  PodLeg(const PodLeg&) = delete;
  PodLeg& operator=(const PodLeg&) = delete;

  // The socket's non-blocking connect() is under way (inbound legs):
  // `done` gets 0 once connected, or the errno it failed with.
  void AwaitConnect(std::function<void(int error)> done);
  // The stream this connection is carried on.
  void Attach(const std::shared_ptr<TunnelConn>& tunnel, int32_t stream_id) override;
  // Starts moving the pod's bytes into the stream (a client after the
  // peer's 200, a server once connected to the pod).
  void StartReading() override;
  int fd() const { return socket_.get(); }
  // Where the pod was connecting to (outbound legs).
  void set_destination(const Destination& d) { destination_ = d; }
  const Destination& destination() const { return destination_; }
  // Gives the pod's socket up, if no byte was read from it yet (permissive
  // mode's plaintext relay takes it over); invalid when it is too late.
  lib::UniqueFd TakeSocket();

  // From the tunnel. OnData's bytes stay valid until FlushBatch, which the
  // tunnel calls once per batch it received: they go to the pod in one
  // sendmsg, not one send per DATA frame.
  void OnData(absl::string_view data) override;
  void FlushBatch() override;
  void OnPeerEof() override;
  void OnStreamClosed(uint32_t error_code) override;
  void OnSendSpace() override;
  // Ends the pod connection with a reset: the tunnel failed or the peer
  // refused the stream.
  void Abort() override;

  void OnEvents(uint32_t events) override;

 private:
  PodLeg(Worker* worker, lib::UniqueFd socket);
  // Tells the loop what this leg waits for now.
  void UpdateInterest();
  void OnReadable();
  void FlushToPod();
  void Close(bool reset);

  Worker* worker_;
  lib::UniqueFd socket_;
  std::weak_ptr<TunnelConn> tunnel_;
  int32_t id_ = -1;
  Destination destination_;
  std::function<void(int)> connect_done_;  // set while connecting
  std::vector<iovec> batch_;               // this batch's DATA, still in the tunnel's buffer
  std::string to_pod_;                     // stream bytes the pod's socket has not taken yet
  size_t to_pod_off_ = 0;
  bool reading_ = false;        // StartReading() was called
  bool read_paused_ = false;    // the stream's send buffer is full
  bool read_eof_ = false;       // the pod sent its FIN, passed on
  bool peer_eof_ = false;       // the peer's FIN: shut our write side once flushed
  bool stream_closed_ = false;  // the stream ended normally: close once flushed
  bool closed_ = false;
};

}  // namespace shunt::proxy
