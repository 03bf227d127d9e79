// Permissive mode's way to a meshless node (docs/mtls.md): when the peer
// node runs no proxy (its inbound port refuses connections), a handed-off
// pod connection is relayed to its destination in plaintext instead, from
// the node's address, and counted. Strict mode never does this, and a
// failed TLS handshake never leads here (that would let an attacker force
// plaintext): only a refused TCP connect does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "agent/lib/unique_fd.h"
#include "proxy/loop/event_loop.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

class Worker;

class PlainRelay : public std::enable_shared_from_this<PlainRelay> {
 public:
  PlainRelay(Worker* worker, lib::UniqueFd pod);
  ~PlainRelay();
  // Connects to `to` and relays both ways until both sides closed; then,
  // or on a reset, tells the worker it is done.
  void Start(const Destination& to);

 private:
  // One socket: its events go to the relay.
  struct End : EventLoop::Watcher {
    PlainRelay* relay;
    lib::UniqueFd fd;
    std::string pending;  // read from the other end, not yet written here
    bool eof = false;     // the other end's FIN was read and passed on here
    void OnEvents(uint32_t events) override { relay->OnEvents(*this, events); }
  };
  void OnEvents(End& e, uint32_t events);
  // Moves what `from` has to `to`; false when the relay is over.
  bool Pump(End& from, End& to);
  bool FlushPending(End& to);
  void UpdateInterest();
  void Finish(bool reset);

  Worker* worker_;
  End pod_, peer_;
  bool connecting_ = false;
  bool done_ = false;
};

}  // namespace shunt::proxy
