// One of the proxy's threads (one per core): its own event loop, its own
// SO_REUSEPORT listeners on the outbound and inbound ports (the kernel
// spreads connections over the threads), and its own tunnel pool, so the
// threads share nothing on the data path but the counters and the current
// Runtime.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proxy/server/inbound_policy.h"
#include "proxy/server/proxy_stats.h"
#include "proxy/server/runtime.h"

namespace shunt::proxy {

class PodLeg;
class TunnelConn;

struct ProxyOptions {
  std::vector<std::string> node_ips;  // the node's addresses (IPv4, IPv6): both listeners
  uint16_t outbound_port = 15001;     // where the kernel hands pod connections
  uint16_t inbound_port = 15008;      // peers' tunnels (HBONE)
  int handshake_timeout_ms = 10000;   // a tunnel's TCP connect plus TLS handshake
  int idle_tunnel_ms = 60000;         // a client tunnel with no stream closes after this
  // Connect to local pods from the remote client pod's address (the agent
  // set up the routing for the replies).
  bool transparent = false;
};

class Worker;

// What every worker shares.
struct ProxyShared {
  ProxyOptions options;
  RuntimeHolder runtime;
  ProxyStats stats;
  InboundPolicy policy;
  std::vector<Worker*> workers;  // set before any runs
};

class Worker {
 public:
  explicit Worker(ProxyShared* shared) : shared_(shared) {}
  // Binds this worker's listeners. Errors name the address.
  absl::Status Listen();
  void Run() { io_.run(); }
  // From another thread: stop accepting; the loop ends once every tunnel
  // and pod connection it carries is done.
  void Drain();
  void Stop() { io_.stop(); }

  asio::io_context& io() { return io_; }
  ProxyShared& shared() { return *shared_; }
  ProxyStats& stats() { return shared_->stats; }
  // Reads land here first (one buffer per thread, not per connection).
  char* scratch() { return scratch_; }
  static constexpr size_t kScratch = 64 * 1024;

  // Server tunnels: a CONNECT to judge and, if allowed, to connect (inbound.cc).
  void OnConnect(const std::shared_ptr<TunnelConn>& tunnel, int32_t id,
                 absl::string_view authority);
  // A tunnel ended: it leaves the pool or the server set.
  void TunnelDone(TunnelConn* tunnel);
  // Permissive mode, the peer node runs no proxy: its pod connections go in
  // plaintext for a while (outbound.cc).
  void MarkMeshless(const std::string& node);
  void RelayPlain(const std::shared_ptr<PodLeg>& leg);

 private:
  void AcceptLoop(asio::ip::tcp::acceptor& acceptor, bool inbound);
  // A pod connection the kernel handed to this proxy (outbound.cc): judged
  // here, carried by the worker that owns its (identity, node) tunnels.
  void HandleOutbound(asio::ip::tcp::socket socket);
  struct Outbound {
    std::string identity, node, authority, forwarded;
    Destination destination;
  };
  void CarryOutbound(int fd, const Outbound& o);
  // A tunnel for `identity` to `node` that takes a new stream, from the
  // pool or new (outbound.cc).
  std::shared_ptr<TunnelConn> TunnelFor(const Runtime& rt, const std::string& identity,
                                        const std::string& node);

  ProxyShared* shared_;
  asio::io_context io_{1};
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> acceptors_;
  // (identity, node address) -> tunnels, the newest last.
  std::map<std::pair<std::string, std::string>, std::vector<std::shared_ptr<TunnelConn>>> pool_;
  std::set<std::shared_ptr<TunnelConn>> servers_;
  // Nodes whose inbound port refused a tunnel: until when they count as meshless.
  std::map<std::string, std::chrono::steady_clock::time_point> meshless_;
  bool draining_ = false;
  alignas(64) char scratch_[kScratch];
};

}  // namespace shunt::proxy
