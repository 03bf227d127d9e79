// A flow as the agent handles it: the kernel's record (struct shunt_flow)
// and its response-latency histogram, which the kernel keeps apart so that
// the many connections that never answer a request stay cheap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "shunt/abi/flow.h"

namespace shunt::telemetry {

struct FlowRecord : shunt_flow {
  uint32_t rr_hist[SHUNT_HIST_BUCKETS] = {};  // all zero when rr_count is 0
};

// One connection: its 4-tuple and when it started (4-tuples are reused).
struct FlowInstance {
  shunt_flow_key key;
  uint64_t start_ns;
  bool operator==(const FlowInstance& o) const {
    return std::memcmp(&key, &o.key, sizeof(key)) == 0 && start_ns == o.start_ns;
  }
  template <typename H>
  friend H AbslHashValue(H h, const FlowInstance& k) {
    return H::combine(std::move(h), k.key.client_ip4, k.key.server_ip4, k.key.client_port,
                      k.key.server_port, k.start_ns);
  }
};

// What the flow ring carries (struct shunt_flow_event): the record alone,
// or followed by its histogram. False, leaving *out alone, for any other size.
bool DecodeFlowEvent(const void* data, size_t size, FlowRecord* out);

// Live histograms by connection, as read from shunt_flow_hists_v1.
using LiveHists = absl::flat_hash_map<FlowInstance, shunt_flow_hist>;

// A live record with its histogram from `hists`, if it has one.
FlowRecord WithHist(const shunt_flow& f, const LiveHists& hists);

}  // namespace shunt::telemetry
