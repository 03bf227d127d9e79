// A Service's L7 settings, from its annotations (issue 17 item 8):
//   shunt.dev/l7: http                   the HTTP layer without an HTTPRouteGroup
//   shunt.dev/timeout: 2s                a response must start within it (504)
//   shunt.dev/retries: "2"               retries of a failed idempotent request
//   shunt.dev/retry-budget: "20%"        retries as a share of live requests
//   shunt.dev/retry-on: 5xx,connect-failure
//   shunt.dev/outlier-consecutive-failures: "5"
//   shunt.dev/outlier-ejection: 30s
// Any of them turns the HTTP layer on for the Service. A bad value is
// reported on the Service (what, where, why) and that setting keeps its
// default; the others apply.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "agent/model/object_ref.h"
#include "agent/model/service.h"

namespace shunt::model {

struct L7Settings {
  bool enabled = false;    // some L7 annotation is present
  int64_t timeout_ms = 0;  // 0: none
  int retries = 0;
  double retry_budget = 0.2;             // ratio of live requests
  bool retry_on_5xx = true;              // retry-on: which failures count, for
  bool retry_on_connect_failure = true;  // retries and for outlier ejection
  bool retry_on_reset = false;
  int outlier_consecutive_failures = 5;
  int64_t outlier_ejection_ms = 30000;
  bool operator==(const L7Settings&) const = default;
};

inline constexpr char kL7AnnotationPrefix[] = "shunt.dev/";

L7Settings ParseL7Settings(const Service& svc, std::vector<Problem>* problems);

// "2s", "500ms", "1m", "1.5s" -> milliseconds; nullopt if not a duration.
std::optional<int64_t> ParseDurationMs(const std::string& text);

}  // namespace shunt::model
