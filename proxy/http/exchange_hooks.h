// What the L7 layer's two protocol engines (H1Proxy, H2Proxy) ask of the
// connection that owns them, per request: a verdict (allowed, where to,
// under which timeout and retry rules), each attempt's outcome for the
// balancer, the finished request for metrics and `shuntctl drops`, and the
// upstream sockets. One set of hooks, so a request is judged, balanced and
// counted the same whichever HTTP version carried it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "agent/lib/unique_fd.h"
#include "proxy/http/h1_parser.h"
#include "proxy/http/route_matcher.h"
#include "proxy/loop/stream_io.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy::http {

// What a judge keeps of one request for the hooks that follow it (a
// service router's pick, the request policy was judged on): the protocol
// engines hold it with the request and hand it back to on_attempt, retry
// and on_request, so on an HTTP/2 connection each stream's attempts and
// retries concern its own request, not the one judged last.
struct ExchangeState {
  virtual ~ExchangeState() = default;
};

struct ExchangeVerdict {
  bool allow = true;
  std::string route;   // "ns/group#match" that allowed or was missing
  std::string reason;  // why denied: the x-shunt-denied header's value
  // Where the request goes (a service's endpoint, picked per request);
  // unset: the connection's destination. `endpoint` is the picker's
  // token, given back in each Attempt.
  std::optional<Destination> upstream;
  int endpoint = -1;
  // Local answer when !allow: 403 (policy) or another (503: no endpoint).
  int status = 403;
  int timeout_ms = 0;  // the response must start within it (504); 0: Options'
  // Attempts after the first an idempotent request may make, and on
  // which failures (each retry also asks Hooks.retry: the budget).
  int retries = 0;
  bool retry_on_5xx = false, retry_on_connect_failure = false, retry_on_reset = false;
  std::shared_ptr<ExchangeState> state;  // the judge's, for the later hooks
  // As new, its strings keeping their memory (a connection's next request
  // is judged into it without allocating).
  void Reset() {
    allow = true;
    route.clear(), reason.clear();
    upstream.reset();
    endpoint = -1;
    status = 403;
    timeout_ms = 0;
    retries = 0;
    retry_on_5xx = retry_on_connect_failure = retry_on_reset = false;
    state.reset();
  }
};
// One attempt of a request at an upstream, ended: what the balancer learns.
struct ExchangeAttempt {
  int endpoint = -1;
  int64_t latency_ns = 0;          // request sent (connected) to response head, or to the failure
  bool failure = false;            // 5xx, connect failure, reset, timeout
  int status = 0;                  // 0: no response; -1: cut off by the client (no fault)
  ExchangeState* state = nullptr;  // the request's verdict's
};
// What the request metrics and `shuntctl drops` see of each request.
struct ExchangeRecord {
  std::string method, route, reason;
  std::string path;    // set only for a request denied or that would be
  int status = 0;      // 0: no response (the connection broke)
  bool local = false;  // answered by the proxy (denied, bad upstream)
  int64_t micros = 0;  // head read to response end
  int retries = 0;     // attempts after the first
  // Where it was last sent (a service's endpoint, or the connection's
  // destination); port 0: nowhere (denied, or answered by the proxy).
  Destination upstream;
  // This hop's span (trace_context.h): for span export.
  std::string trace_id, span_id, parent_id;
  std::shared_ptr<ExchangeState> state;  // its verdict's
  // As new, its strings keeping their memory (a connection's next request).
  void Reset() {
    method.clear(), route.clear(), reason.clear(), path.clear();
    status = 0;
    local = false;
    micros = 0;
    retries = 0;
    upstream = Destination{};
    trace_id.clear(), span_id.clear(), parent_id.clear();
    state.reset();
  }
};
// RFC 9110 9.2.2: what a retry may send again.
inline bool Idempotent(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

struct ExchangeHooks {
  // Judges a request into *verdict (Reset by the caller, its strings'
  // memory kept from the connection's last request).
  std::function<void(const H1Head&, const RequestView&, ExchangeVerdict* verdict)> judge;
  std::function<void(const ExchangeRecord&)> on_request;
  std::function<void(const void* proxy)> on_done;  // its connections closed
  // Makes the upstream socket (non-blocking, not connected; H1Proxy
  // connects it): the proxy's connections to pods are marked and bound
  // to the client's address (proxy/server/pod_socket.h). Unset: a plain
  // socket of the upstream's family.
  // It sets *connected for a stream that needs no connect() (an
  // in-process channel into a tunnel stream to another node: its end
  // before any byte is the peer node refusing it, a connect failure).
  std::function<StreamIo(const Destination&, bool* connected)> open_upstream;
  // Each attempt's end (a Verdict with an endpoint).
  std::function<void(const ExchangeAttempt&)> on_attempt;
  // A retry of the request whose verdict holds `state` is wanted: true
  // (and where to) if the budget allows it and there is somewhere to go.
  std::function<bool(ExchangeState* state, Destination* next, int* endpoint)> retry;
  // What the hooks work on, kept alive as long as they are: the hooks
  // capture a plain pointer to it, small enough for std::function to hold
  // without a heap allocation each (an idle connection's memory).
  std::shared_ptr<void> owner;
};

}  // namespace shunt::proxy::http
