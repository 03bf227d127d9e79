// Distributed tracing through the L7 layer (issue 17 item 4): each request
// a hop forwards carries its trace on with a span of this hop's own —
// W3C Trace Context (traceparent, tracestate passed on untouched) and B3
// (the single b3 header or the X-B3-* ones), whichever the request came
// with; a request with neither starts a trace (W3C). Malformed context is
// dropped, not forwarded: a new trace starts, as the W3C spec says.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/strings/string_view.h"

namespace shunt::proxy::http {

struct HopSpan {
  std::string trace_id;   // 32 hex digits
  std::string span_id;    // 16 hex digits: this hop's
  std::string parent_id;  // 16 hex digits, or empty for a trace started here
  bool sampled = true;
  bool w3c = false, b3_single = false, b3_multi = false;  // how it came in
};

// Valid W3C traceparent: "00-<32 hex>-<16 hex>-<2 hex>", ids not all zero,
// lower case; a higher version with more fields after these is read too.
bool ParseTraceparent(absl::string_view value, std::string* trace_id, std::string* span_id,
                      bool* sampled);

// Reads the request's trace context from `headers` and makes this hop's span.
HopSpan StartHop(const std::vector<std::pair<std::string, std::string>>& headers,
                 absl::BitGenRef rng);
// The same into `span`, its strings reused (no allocation once they have
// grown: a connection keeps one).
void StartHop(const std::vector<std::pair<std::string, std::string>>& headers, absl::BitGenRef rng,
              HopSpan* span);

// Rewrites `headers` for the next hop: the trace headers the request came
// with, now naming this hop's span as the parent (traceparent always). A
// header it adds is made from `spare`'s entries when there are some
// (H1Head::spare: no allocation once a connection's headers have grown).
void Propagate(const HopSpan& span, std::vector<std::pair<std::string, std::string>>* headers,
               std::vector<std::pair<std::string, std::string>>* spare = nullptr);

}  // namespace shunt::proxy::http
