// The proxy's counters, shared by its worker threads (relaxed atomics, each
// thread adding into a shard of its own so that no cache line moves between
// workers per request) and sent to the agent every second, which shows them in `shuntctl status`,
// `/metrics` and, for refusals, `shuntctl drops`.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "nlohmann/json.hpp"
#include "proxy/common/thread_index.h"

namespace shunt::proxy {

enum class Stat : int {
  kOutboundAccepted,          // pod connections handed to this proxy
  kOutboundNoOriginalDst,     // ... that named no destination (SO_ORIGINAL_DST failed)
  kOutboundUnknownSource,     // ... from an address that is no local pod
  kOutboundNoCertificate,     // ... whose identity has no certificate yet
  kOutboundUnknownNode,       // ... to a pod whose node is not known
  kTunnelsOpened,             // client tunnels connected and handshaken
  kTunnelHandshakeFailures,   // client tunnels that failed to connect or handshake
  kHandshakeMicrosTotal,      // sum of client handshake times (TCP connect to established)
  kStreamsOpened,             // pod connections carried as streams (client side)
  kStreamsOnWarmTunnel,       // ... of them on a tunnel that was already established
  kStreamsRefusedByPeer,      // ... that the peer node's proxy refused
  kInboundTunnels,            // tunnels accepted and handshaken (server side)
  kInboundHandshakeRefused,   // ... refused at the handshake (see refusals by reason)
  kInboundHandshakeTimeouts,  // ... that never completed the handshake in time
  kInboundStreams,            // CONNECTs received
  kInboundStreamsAccepted,    // ... connected to a local pod
  kInboundPermissiveAllowed,  // ... policy would deny, allowed in permissive policy mode
  kBytesToPeer,               // plaintext bytes from local pods into tunnels
  kBytesFromPeer,             // plaintext bytes from tunnels to local pods
  kPlaintextToMeshless,       // permissive: relayed in plaintext to a node without a proxy
  kL7GrantNeedsTunnel,        // ... not: granted through HTTP routes only (reset)
  kInboundTransparent,        // connected to the pod from the client pod's own address
  kInboundTransparentFailed,  // ... could not be, connected from the node's address
  kL7Accepted,                // connections the kernel sent to the L7 layer
  kL7Refused,                 // ... refused (unknown pod, not HTTP in enforce mode)
  kL7RelayedNotHttp,          // ... not HTTP, relayed as bytes (permissive policy mode)
  kL7Requests,                // HTTP requests the L7 layer finished
  kL7RequestsDenied,          // ... denied by policy (403 from the proxy)
  kL7RequestsWouldDeny,       // ... policy would deny, forwarded (permissive policy mode)
  kL7LocalAnswers,            // ... answered by the proxy otherwise (400, 408, 502, 503, 504)
  kL7ServiceConnections,      // L7 connections to a service balanced per request
  kL7Retries,                 // requests sent again after a failed attempt
  kL7RetriesOverBudget,       // ... not sent again: the service's retry budget was spent
  kL7Http2Connections,        // L7 connections that spoke HTTP/2 (prior knowledge)
  kL7UpstreamsParked,         // idle upstream HTTP/1.1 connections given to the shared pool
  kL7UpstreamsReused,         // ... taken from it by a request (no new connection)
  kL7ConnectionsMapped,       // L7 connections whose upstream speaks the other HTTP version
  kCount
};

inline constexpr const char* kStatNames[] = {
    "outbound_accepted",
    "outbound_no_original_dst",
    "outbound_unknown_source",
    "outbound_no_certificate",
    "outbound_unknown_node",
    "tunnels_opened",
    "tunnel_handshake_failures",
    "handshake_micros_total",
    "streams_opened",
    "streams_on_warm_tunnel",
    "streams_refused_by_peer",
    "inbound_tunnels",
    "inbound_handshake_refused",
    "inbound_handshake_timeouts",
    "inbound_streams",
    "inbound_streams_accepted",
    "inbound_permissive_allowed",
    "bytes_to_peer",
    "bytes_from_peer",
    "plaintext_to_meshless_node",
    "l7_grant_needs_tunnel",
    "inbound_transparent",
    "inbound_transparent_failed",
    "l7_connections",
    "l7_connections_refused",
    "l7_connections_relayed_not_http",
    "l7_requests",
    "l7_requests_denied",
    "l7_requests_would_deny",
    "l7_requests_answered_by_proxy",
    "l7_service_connections",
    "l7_retries",
    "l7_retries_over_budget",
    "l7_http2_connections",
    "l7_upstreams_parked",
    "l7_upstreams_reused",
    "l7_connections_mapped",
};

static_assert(std::size(kStatNames) == static_cast<size_t>(Stat::kCount), "a name per Stat");

// One refused connection or handshake: what `shuntctl drops` shows.
struct RefusalEvent {
  std::string reason;       // "unknown-ca", "policy-denied", "not-a-local-pod", ...
  std::string peer;         // the SPIFFE ID the peer proved, or its address
  std::string source;       // the source pod's address, when known
  std::string destination;  // "ip:port", when known
  int64_t unix_ms = 0;      // 0: now (Refuse() dates it)
  // "mtls" (a connection or tunnel) or "l7" (a request or an L7 connection).
  std::string type = "mtls";
  bool enforced = true;  // false: permissive policy mode's would-deny
  // L7: the route that was not granted ("ns/group#match"), the request's
  // method and path, and the destination's identity ("ns/sa").
  std::string route, method, path, destination_identity;
};

class ProxyStats {
 public:
  void Add(Stat s, uint64_t n = 1) {
    ShardOfThisThread().v[static_cast<size_t>(s)].fetch_add(n, std::memory_order_relaxed);
  }
  // The sum over the threads' shards.
  uint64_t Get(Stat s) const;
  // A refusal: counted by reason, and kept (up to 1,000 not yet sent) for
  // the agent's drop log.
  void Refuse(RefusalEvent e);
  // Counters and refusals by reason, and the refusal events since the last call.
  nlohmann::json TakeReport();

 private:
  // Threads take shards in turn; more threads than shards share them
  // (the adds are atomic).
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, static_cast<size_t>(Stat::kCount)> v{};
  };
  static constexpr size_t kShards = 64;
  Shard& ShardOfThisThread() { return shards_[ThisThreadIndex() % kShards]; }
  std::array<Shard, kShards> shards_{};
  std::mutex mu_;
  std::map<std::string, uint64_t> refusals_;  // by reason, cumulative
  std::deque<RefusalEvent> pending_;
  uint64_t events_lost_ = 0;
};

}  // namespace shunt::proxy
