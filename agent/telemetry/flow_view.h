// A flow record as users see it: the kernel's record and histogram with both
// ends named and wall-clock times, rendered as JSON for the agent API and
// shuntctl.
#pragma once

#include <cstdint>
#include <string>

#include "agent/lib/clock.h"
#include "agent/telemetry/flow_record.h"
#include "agent/telemetry/peer_directory.h"
#include "nlohmann/json.hpp"
#include "shunt/abi/flow.h"

namespace shunt::telemetry {

struct FlowView {
  uint64_t seq = 0;  // order of arrival of finished flows; 0 for a live one
  FlowRecord raw{};
  int64_t start_wall_ns = 0, end_wall_ns = 0;  // CLOCK_REALTIME; end 0 while open
  Peer client, server;
  std::string rule;  // the TrafficTarget that allowed it, "ns/name", if known
};

const char* VerdictName(uint8_t v);  // "allowed", "l7", "audit", "denied", "unmeshed"
const char* EndName(uint8_t e);      // "open", "closed", "reset", "refused", "denied"
// Both ends joined the sockhash.
bool ShortCircuited(const shunt_flow& f);
// The path the flow's bytes take (took): "short-circuit", or "tcp" when an
// end is not in the sockhash or its tcp_reason holds it on TCP.
const char* PathName(const shunt_flow& f);

// CLOCK_MONOTONIC ns (bpf_ktime_get_ns) -> CLOCK_REALTIME ns, by the offset
// between the two that `clock` reads now; 0 stays 0 (not stamped).
int64_t MonotonicToWall(uint64_t mono_ns, const lib::Clock& clock);

// `trust_domain`: for mTLS flows, the SPIFFE ID of the side on the other
// node ("peer_identity"), whose proxy proved it.
nlohmann::json FlowJson(const FlowView& f, const std::string& trust_domain = "cluster.local");

}  // namespace shunt::telemetry
