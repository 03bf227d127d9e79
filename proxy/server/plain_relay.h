// Permissive mode's way to a meshless node (docs/mtls.md): when the peer
// node runs no proxy (its inbound port refuses connections), a handed-off
// pod connection is relayed to its destination in plaintext instead, from
// the node's address, and counted. Strict mode never does this, and a
// failed TLS handshake never leads here (that would let an attacker force
// plaintext): only a refused TCP connect does.
#pragma once

#include <asio.hpp>
#include <memory>
#include <string>

#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

class Worker;

class PlainRelay : public std::enable_shared_from_this<PlainRelay> {
 public:
  PlainRelay(Worker* worker, asio::ip::tcp::socket pod);
  // Connects to `to` and relays both ways until both sides closed.
  void Start(const Destination& to);

 private:
  struct Side {
    asio::ip::tcp::socket* from;
    asio::ip::tcp::socket* to;
    std::string pending;  // read from `from`, not yet written to `to`
    bool eof = false;
  };
  void Arm(Side& s);
  void Pump(Side& s);
  void ArmWrite(Side& s);
  void Reset();

  Worker* worker_;
  asio::ip::tcp::socket pod_, peer_;
  Side up_{&pod_, &peer_}, down_{&peer_, &pod_};
  bool dead_ = false;
};

}  // namespace shunt::proxy
