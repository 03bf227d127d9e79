// Fuzz target http_request: the first bytes a client sends to the agent's
// local API (unix socket) or its metrics port (TCP), read as the server
// reads them (ParseRequest: Beast's parser with the server's limits,
// ToRequest, RejectedRead), then routed on a table of the agent's paths
// and handed to the parsers the handlers run on the request: the query
// (ParseQuery), SMI TrafficMetrics paths and ?window= (ServeTrafficMetrics),
// the body of POST /v1/policy/check (ParseCheckRequest).
//
// Beyond not crashing:
//  * the bytes cut at a point derived from the input, with the client
//    still sending, give an incomplete read or the same request;
//  * what a request holds lies within the input: the method and the raw
//    query are substrings of it, the path and body no longer than it, the
//    bytes consumed within it, the body within the limit;
//  * every answer the server would write (404, 405, 400, 413, 431, the
//    TrafficMetrics answers) is valid JSON;
//  * PercentDecode(PercentEncode(s)) == s for the decoded path.
#include <string>

#include "agent/http/request_parser.h"
#include "agent/http/router.h"
#include "agent/policy/check.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/traffic_metrics.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

bool Within(std::string_view input, std::string_view part) {
  return part.empty() || input.find(part) != std::string_view::npos;
}

void CheckJson(const std::string& body) { FUZZ_CHECK(nlohmann::json::accept(body)); }

// The agent's routes (agent.cc and the controllers), with handlers that run
// the pure part of theirs.
const http::Router& Routes() {
  static const http::Router* router = [] {
    static lib::FakeClock clock(1'000'000'000'000, 1'700'000'000'000'000'000);
    static telemetry::FlowAggregator flows({.clock = &clock});
    auto* r = new http::Router();
    auto ok = [](const http::Request&) { return http::Json({{"ok", true}}); };
    for (const char* path : {"/v1/ping", "/v1/status", "/v1/flows", "/v1/stat", "/v1/services",
                             "/v1/lb/explain", "/v1/drops", "/metrics", "/"})
      r->Add("GET", path, ok);
    r->Add("POST", "/v1/policy/check", [](const http::Request& req) {
      auto j = nlohmann::json::parse(req.body, nullptr, false);
      auto parsed = policy::ParseCheckRequest(j.is_discarded() ? nlohmann::json() : j);
      if (!parsed.ok()) return http::Error(400, std::string(parsed.status().message()));
      FUZZ_CHECK(parsed->port >= 1);
      return http::Json({{"from", parsed->from}, {"to", parsed->to}});
    });
    r->AddPrefix("GET", "/apis/metrics.smi-spec.io/", [](const http::Request& req) {
      auto a = telemetry::ServeTrafficMetrics(req.path, req.raw_query, flows, clock.RealtimeNs());
      return http::Response{a.status, a.content_type, std::move(a.body)};
    });
    return r;
  }();
  return *router;
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  using http::ParsedRequest;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // Small limits, so that the fuzzer meets them.
  const http::RequestLimits limits{.max_header_bytes = 512, .max_body_bytes = 256};
  const ParsedRequest whole = http::ParseRequest(input, limits, /*eof=*/true);
  FUZZ_CHECK(whole.consumed <= size);

  if (size > 0) {
    const size_t cut = fuzz::Fnv1a(data, size) % size;
    const ParsedRequest part = http::ParseRequest(input.substr(0, cut), limits, /*eof=*/false);
    FUZZ_CHECK(part.consumed <= cut);
    if (part.outcome == ParsedRequest::Outcome::kComplete) {
      FUZZ_CHECK(whole.outcome == ParsedRequest::Outcome::kComplete);
      FUZZ_CHECK(part.request.method == whole.request.method);
      FUZZ_CHECK(part.request.path == whole.request.path);
      FUZZ_CHECK(part.request.raw_query == whole.request.raw_query);
      FUZZ_CHECK(part.request.body == whole.request.body);
    }
    // A request refused on its first bytes is refused whatever follows.
    if (part.outcome == ParsedRequest::Outcome::kRejected)
      FUZZ_CHECK(whole.outcome == ParsedRequest::Outcome::kRejected);
  }

  switch (whole.outcome) {
    case ParsedRequest::Outcome::kIncomplete:
      FUZZ_CHECK(false);  // with eof the read always ends
      break;
    case ParsedRequest::Outcome::kClosed:
      FUZZ_CHECK(!whole.answer);
      break;
    case ParsedRequest::Outcome::kRejected:
      FUZZ_CHECK(whole.answer);
      FUZZ_CHECK(whole.answer->status == 400 || whole.answer->status == 413 ||
                 whole.answer->status == 431);
      fuzz::CheckJson(whole.answer->body);
      break;
    case ParsedRequest::Outcome::kComplete: {
      const http::Request& r = whole.request;
      FUZZ_CHECK(!r.method.empty() && fuzz::Within(input, r.method));
      FUZZ_CHECK(fuzz::Within(input, r.raw_query));
      FUZZ_CHECK(r.path.size() <= size && r.body.size() <= size);
      FUZZ_CHECK(r.body.size() <= limits.max_body_bytes);
      FUZZ_CHECK(whole.version <= 99);  // HTTP/DIGIT.DIGIT
      FUZZ_CHECK(http::PercentDecode(http::PercentEncode(r.path)) == r.path);
      bool path_known = false;
      const http::Route* route = fuzz::Routes().Find(r.method, r.path, &path_known);
      http::Response resp;
      if (route == nullptr) {
        resp = path_known ? http::Error(405, r.method + " is not served on " + r.path)
                          : http::Error(404, "no such path: " + r.path);
      } else {
        resp = route->handler(r);
      }
      if (resp.content_type == "application/json") fuzz::CheckJson(resp.body);
      break;
    }
  }
  return 0;
}
