// One of the proxy's threads (one per core): its own event loop, its own
// SO_REUSEPORT listeners on the outbound and inbound ports (the kernel
// spreads connections over the threads), and its own tunnel pool, so the
// threads share nothing on the data path but the counters and the current
// Runtime.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "proxy/http/h1_proxy.h"
#include "proxy/loop/event_loop.h"
#include "proxy/server/inbound_policy.h"
#include "proxy/server/l7_service_router.h"
#include "proxy/server/proxy_stats.h"
#include "proxy/server/request_metrics.h"
#include "proxy/server/runtime.h"
#include "proxy/server/span_exporter.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

class PlainRelay;
class PodLeg;
class TunnelConn;
struct L7Flow;

struct ProxyOptions {
  std::vector<std::string> node_ips;  // the node's addresses (IPv4, IPv6): both listeners
  uint16_t outbound_port = 15001;     // where the kernel hands pod connections
  uint16_t inbound_port = 15008;      // peers' tunnels (HBONE)
  uint16_t l7_port = 15006;           // connections the kernel sends to the L7 layer; 0: none
  int handshake_timeout_ms = 10000;   // a tunnel's TCP connect plus TLS handshake
  int idle_tunnel_ms = 60000;         // a client tunnel with no stream closes after this
  // Connect to local pods from the remote client pod's address (the agent
  // set up the routing for the replies).
  bool transparent = false;
  // The L7 layer's limits (the agent's --l7-* flags, docs/l7.md).
  struct L7Limits {
    int max_connections = 20000;          // open at once, the whole proxy; more are refused
    size_t max_header_bytes = 64 * 1024;  // a request's or response's head
    size_t max_headers = 100;             // HTTP/1.x header lines in a head
    int header_timeout_ms = 10000;        // a request head complete after its first byte
    int idle_timeout_ms = 60000;          // a connection with no request in flight
    int connect_timeout_ms = 5000;        // an upstream connection established
    int stream_idle_timeout_ms = 300000;  // an HTTP/2 stream with nothing moving
  } l7;
};

class Worker;

// Each worker's L7 balancing as it last published it (every second; a
// worker's balancers are its thread's alone), for the proxy's report.
class L7StateBoard {
 public:
  void Publish(size_t worker, nlohmann::json leaves);
  // [{"thread": i, "leaves": [...]}], for the workers that balance any.
  nlohmann::json Collect() const;

 private:
  mutable std::mutex mu_;
  std::map<size_t, nlohmann::json> by_worker_;
};

// What every worker shares.
struct ProxyShared {
  ProxyOptions options;
  RuntimeHolder runtime;
  ProxyStats stats;
  InboundPolicy policy;
  RequestMetrics requests;              // the L7 layer's, per edge and route
  L7StateBoard l7_state;                // the L7 layer's balancers, per worker
  std::unique_ptr<SpanExporter> spans;  // --trace-otlp-endpoint; null: no export
  std::atomic<int> l7_connections{0};   // open L7 connections, every worker's
  // Idle upstream HTTP/1.1 connections every worker's L7 connections share.
  http::UpstreamPool upstreams{
      http::UpstreamPool::Options{.on_park = [this] { stats.Add(Stat::kL7UpstreamsParked); },
                                  .on_reuse = [this] { stats.Add(Stat::kL7UpstreamsReused); }}};
  std::vector<Worker*> workers;  // set before any runs
};

// The CPUs this process may run on (sched_getaffinity: its cgroup's
// cpuset, taskset), in order; all online ones if it cannot say.
std::vector<int> AllowedCpus();
// A listening socket on ip:port shared with the other workers
// (SO_REUSEPORT), for the connections whose handshake runs on `cpu`
// (SO_INCOMING_CPU) if it is not -1. Errors name the address.
absl::StatusOr<lib::UniqueFd> ListenSocket(const std::string& ip, uint16_t port, int cpu);

class Worker {
 public:
  static absl::StatusOr<std::unique_ptr<Worker>> Create(ProxyShared* shared);
  // Binds this worker's listeners: one per port and address, or with
  // `cpus`, for the ports local pods connect to (outbound, L7), one for
  // each of those CPUs, which the kernel picks for the connections whose
  // handshake runs there (SO_INCOMING_CPU): a client's connections come to
  // the worker of its CPU, whose events then come in batches (fewer
  // wake-ups per request) instead of spread over every worker. Other
  // connections, and peer nodes' tunnels (the inbound port: they arrive on
  // whichever CPU takes the NIC's packets), are spread by SO_REUSEPORT's
  // hash. Errors name the address.
  absl::Status Listen(const std::vector<int>& cpus = {});
  void Run() { loop_->Run(); }
  // From another thread: stop accepting; drained() turns true once every
  // tunnel and pod connection this worker carries is done.
  void Drain();
  bool drained() const { return drained_.load(std::memory_order_acquire); }
  void Stop() { loop_->Stop(); }

  EventLoop& loop() { return *loop_; }
  ProxyShared& shared() { return *shared_; }
  ProxyStats& stats() { return shared_->stats; }
  // Reads land here first (one buffer per thread, not per connection).
  char* scratch() { return scratch_; }
  static constexpr size_t kScratch = 256 * 1024;

  // Server tunnels: a CONNECT to judge and, if allowed, to connect (inbound.cc).
  void OnConnect(const std::shared_ptr<TunnelConn>& tunnel, int32_t id,
                 absl::string_view authority);
  // A tunnel ended: it leaves the pool or the server set.
  void TunnelDone(TunnelConn* tunnel);
  // Permissive mode, the peer node runs no proxy: its pod connections go in
  // plaintext for a while (outbound.cc).
  void MarkMeshless(const std::string& node);
  // Relays the leg's pod connection in plaintext, unless its grant is HTTP
  // routes only (reset: PlaintextToMeshless).
  void RelayPlain(const std::shared_ptr<PodLeg>& leg);
  // A connection from `source` to `to` on a meshless node that needs that
  // node's proxy to judge it: refused "l7-grant-needs-tunnel" and false,
  // or with permissive policy reported as not enforced, counted as
  // relayed and true.
  bool PlaintextToMeshless(const std::string& source, const Destination& to);
  void RelayDone(PlainRelay* relay);
  // The L7 layer (l7_entry.cc): a connection in detection or an H1Proxy,
  // held by this worker until it says it is done.
  void KeepL7(const void* key, std::shared_ptr<void> held);
  // The L7 layer's connection count: at its limit (--l7-max-connections),
  // a new one is refused; each L7Entry counts one until its connection ends.
  bool L7AtCapacity() const {
    return shared_->l7_connections.load(std::memory_order_relaxed) >=
           shared_->options.l7.max_connections;
  }
  void L7ConnectionStarted() { shared_->l7_connections.fetch_add(1, std::memory_order_relaxed); }
  void L7ConnectionEnded() { shared_->l7_connections.fetch_sub(1, std::memory_order_relaxed); }
  void L7Done(const void* key);
  // Each request an L7 connection finished: counted; denials reported.
  // `destination` is the identity it went to ("ns/sa"; a service's
  // request: the endpoint's, or its leaf service's on another node).
  void L7Request(const L7Flow& flow, const std::string& destination,
                 const http::H1Proxy::Record& r);
  void ExportSpan(const L7Flow& flow, const std::string& destination,
                  const http::H1Proxy::Record& r);
  // This thread's balancing state of the services balanced per request,
  // brought up to date with the Runtime's services first.
  L7Balancers& l7_balancers(const Runtime& rt) {
    if (rt.config.generation != l7_balancers_.generation()) l7_balancers_.Sweep(rt);
    return l7_balancers_;
  }
  // An upstream connection of the L7 layer to a pod of another node: a
  // stream of this worker's tunnel to that node presenting the client
  // pod's identity, read and written in process (L7StreamLeg,
  // outbound.cc); invalid when no tunnel can carry it (no certificate,
  // node unknown, tunnels full). *plaintext: the node runs no proxy
  // (permissive mode found it meshless): connect to the pod instead.
  StreamIo OpenTunnelStream(const L7Flow& flow, const Destination& to, bool* plaintext);

 private:
  explicit Worker(ProxyShared* shared) : shared_(shared) {}
  // A listening socket of this worker's: accepts until the kernel has no
  // more, or a batch, so the connections already open get their turn.
  enum class Port { kOutbound, kInbound, kL7 };
  struct Listener : EventLoop::Watcher {
    Worker* worker;
    lib::UniqueFd fd;
    Port port;
    void OnEvents(uint32_t) override { worker->Accept(*this); }
  };
  void Accept(Listener& l);
  // A pod connection the kernel handed to this proxy (outbound.cc): judged
  // here, carried by the worker that owns its (identity, node) tunnels.
  void HandleOutbound(lib::UniqueFd socket);
  // A pod connection the kernel sent to the L7 layer (l7_entry.cc).
  void HandleL7(lib::UniqueFd socket);
  // A tunnel stream whose grant is HTTP routes only (inbound.cc).
  void CarryInboundL7(const std::shared_ptr<TunnelConn>& tunnel, int32_t id,
                      const Destination& source, const Destination& destination);
  struct Outbound {
    std::string identity, node, authority, forwarded;
    Destination destination;
  };
  void CarryOutbound(lib::UniqueFd socket, const Outbound& o);
  // A tunnel for `identity` to `node` that takes a new stream, from the
  // pool or new (outbound.cc).
  std::shared_ptr<TunnelConn> TunnelFor(const Runtime& rt, const std::string& identity,
                                        const std::string& node);
  // Draining and nothing carried any more: drained() says so.
  void CheckDrained();
  // Publishes this worker's L7 balancing (L7StateBoard), then again in a second.
  void PublishL7State();

  ProxyShared* shared_;
  std::unique_ptr<EventLoop> loop_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // (identity, node address) -> tunnels, the newest last.
  std::map<std::pair<std::string, std::string>, std::vector<std::shared_ptr<TunnelConn>>> pool_;
  std::set<std::shared_ptr<TunnelConn>> servers_;
  std::set<std::shared_ptr<PlainRelay>> relays_;
  std::map<const void*, std::shared_ptr<void>> l7_;
  L7Balancers l7_balancers_;
  // Nodes whose inbound port refused a tunnel: until when they count as meshless.
  std::map<std::string, std::chrono::steady_clock::time_point> meshless_;
  bool draining_ = false;
  std::atomic<bool> drained_{false};
  alignas(64) char scratch_[kScratch];
};

}  // namespace shunt::proxy
