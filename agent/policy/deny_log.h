// Consumes the denial ring buffer and keeps the most recent events, with
// sequence numbers, for `shuntctl drops` (and --follow).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "shunt/abi/policy.h"

struct ring_buffer;

namespace shunt::policy {

// A connection or tunnel the node's mTLS proxy refused (docs/mtls.md).
struct ProxyRefusal {
  std::string reason;       // "unknown-ca", "identity-mismatch", "policy-denied", ...
  std::string peer;         // the SPIFFE ID the peer proved, or its address
  std::string source;       // the source pod's address, when known
  std::string destination;  // "ip:port" / "[ip6]:port", when known
  // "mtls" (a tunnel or stream refused) or "l7" (a request denied, or an L7
  // connection refused: docs/l7.md).
  std::string type = "mtls";
  bool enforced = true;  // false: permissive mode's would-deny (L7)
  // L7: the route not granted, the request, the destination's identity.
  std::string route, method, path, destination_identity;
};

struct LoggedDenial {
  uint64_t seq = 0;
  int64_t wall_time_ns = 0;  // CLOCK_REALTIME, converted from the event's monotonic stamp
  shunt_deny_event event{};
  // An IPv6 denial (a shunt_deny_event6 record): its addresses, event.saddr
  // and event.daddr being 0.
  bool ipv6 = false;
  shunt_ip6 saddr6{};
  shunt_ip6 daddr6{};
  // Set for the proxy's refusals, which have no kernel event.
  std::optional<ProxyRefusal> proxy;
};

// One record of the denial ring as a LoggedDenial (seq left alone), dated
// by the clocks' readings now. False for a record too short to be a
// shunt_deny_event; one of a shunt_deny_event6's size or longer is an IPv6
// denial, any other longer one is read for its first sizeof bytes.
bool DecodeDenyEvent(const void* data, size_t size, int64_t realtime_ns, int64_t monotonic_ns,
                     LoggedDenial* out);

class DenyLog {
 public:
  static absl::StatusOr<std::unique_ptr<DenyLog>> Create(int ringbuf_fd, size_t keep = 4096);
  ~DenyLog();

  int fd() const;  // epoll fd to poll for readability
  void Consume();  // drains what is ready
  // A denial from elsewhere than the ring (the mTLS proxy's); numbered here.
  void Append(LoggedDenial d);
  // Events with seq > after, oldest first, at most `limit`.
  std::vector<LoggedDenial> Since(uint64_t after, size_t limit) const;
  uint64_t total() const { return next_seq_ - 1; }

 private:
  DenyLog() = default;
  static int OnEvent(void* ctx, void* data, size_t size);

  ring_buffer* rb_ = nullptr;
  std::deque<LoggedDenial> events_;
  size_t keep_ = 0;
  uint64_t next_seq_ = 1;
};

}  // namespace shunt::policy
