#include "proxy/server/l7_entry.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "proxy/common/socket_ops.h"
#include "proxy/http/h1_proxy.h"
#include "proxy/http/h2_proxy.h"
#include "proxy/server/pod_socket.h"
#include "proxy/server/worker.h"

namespace shunt::proxy {

model::Subject SubjectOf(const std::string& identity) {
  const size_t slash = identity.find('/');
  if (slash == std::string::npos) return {.namespace_ = "", .name = identity};
  return {.namespace_ = identity.substr(0, slash), .name = identity.substr(slash + 1)};
}

void Worker::HandleL7(lib::UniqueFd socket) {
  stats().Add(Stat::kL7Accepted);
  const std::string source = PeerAddressText(socket.get());
  if (source.empty()) return;  // gone already
  const bool v6 = source.find(':') != std::string::npos;
  L7Flow flow;
  auto refuse = [&](const char* reason) {
    stats().Add(Stat::kL7Refused);
    stats().Refuse({.reason = reason,
                    .peer = source,
                    .source = source,
                    .destination = flow.destination.port ? flow.destination.ToAuthority() : "",
                    .type = "l7"});
    ResetOnClose(socket.get());
  };
  if (!OriginalDestination(socket.get(), v6, &flow.destination)) return refuse("no-original-dst");
  flow.source.family = v6 ? AF_INET6 : AF_INET;
  inet_pton(flow.source.family, source.c_str(), flow.source.addr.data());
  auto rt = shared_->runtime.Get();
  const std::string* from = rt->IdentityOfLocalPod(source);
  const std::string* to = rt->IdentityOfLocalPod(flow.destination.AddressText());
  // The kernel sends only local pods' connections to local pods here; the
  // agent's last word may be older than the kernel's, for a moment.
  if (!from) return refuse("unknown-source");
  flow.source_identity = SubjectOf(*from);
  flow.source_text = *from;
  if (to) {
    flow.destination_identity = SubjectOf(*to);
    flow.destination_text = *to;
  } else if ((flow.service = rt->L7ServiceAt(flow.destination))) {
    // A service balanced per request: each request picks its endpoint.
    flow.destination_text = flow.service->config.service;
    stats().Add(Stat::kL7ServiceConnections);
  } else {
    return refuse("not-a-local-pod");
  }
  if (draining_) return ResetOnClose(socket.get());
  if (L7AtCapacity()) return refuse("l7-connection-limit");
  if (auto e = L7Entry::Start(this, StreamIo(std::move(socket)), std::move(flow)))
    KeepL7(e.get(), e);
}

void Worker::KeepL7(const void* key, std::shared_ptr<void> held) { l7_[key] = std::move(held); }

void Worker::L7Done(const void* key) {
  // Later, not here: the connection is still running the call that ended it.
  loop_->Later([this, key] {
    l7_.erase(key);
    CheckDrained();
  });
}

void Worker::L7Request(const L7Flow& flow, const std::string& destination,
                       const http::H1Proxy::Record& r) {
  stats().Add(Stat::kL7Requests);
  shared_->requests.Add(flow.source_text, destination, flow.destination.port, r.route, r.status,
                        r.micros, r.retries);
  const bool denied = r.local && r.status == 403;
  // By address for the agent's windows: where the request went, else
  // where its connection was going (a service's address for a request
  // denied before an endpoint was picked: the agent does not know it as a
  // pod and calls it unmeshed).
  // (IPv4 only: the agent's windows name pods by their IPv4 address; an
  // IPv6 L7 flow's requests are in /metrics, `stat route` and drops.)
  if (flow.source.family == AF_INET)
    shared_->requests.AddRecent(flow.source, r.upstream.port ? r.upstream : flow.destination,
                                r.route, r.status, r.micros, r.retries, denied);
  if (shared_->spans && !r.trace_id.empty()) ExportSpan(flow, destination, r);
  const bool would_deny = !r.local && !r.reason.empty();
  if (r.local && !denied) stats().Add(Stat::kL7LocalAnswers);
  if (!denied && !would_deny) return;
  stats().Add(denied ? Stat::kL7RequestsDenied : Stat::kL7RequestsWouldDeny);
  stats().Refuse({.reason = r.reason,
                  .peer = flow.source_text,
                  .source = flow.source.AddressText(),
                  .destination = flow.destination.ToAuthority(),
                  .type = "l7",
                  .enforced = denied,
                  .route = r.route,
                  .method = r.method,
                  .path = r.path,
                  .destination_identity = destination});
}

// This hop's span of a forwarded request, in OpenTelemetry's HTTP terms.
void Worker::ExportSpan(const L7Flow& flow, const std::string& destination,
                        const http::H1Proxy::Record& r) {
  const int64_t end = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  ExportedSpan s{.trace_id = r.trace_id,
                 .span_id = r.span_id,
                 .parent_id = r.parent_id,
                 .name = absl::StrCat(r.method, " ", r.route.empty() ? destination : r.route),
                 .start_unix_ns = end - r.micros * 1000,
                 .end_unix_ns = end,
                 .error = r.status == 0 || r.status >= 500};
  s.strings = {{"http.request.method", r.method},
               {"client.address", flow.source.AddressText()},
               {"server.address", flow.destination.AddressText()},
               {"shunt.source.identity", flow.source_text},
               {"shunt.destination.identity", destination}};
  if (!r.route.empty()) s.strings.emplace_back("http.route", r.route);
  s.ints = {{"server.port", flow.destination.port}, {"shunt.retries", r.retries}};
  if (r.status > 0) s.ints.emplace_back("http.response.status_code", r.status);
  shared_->spans->Add(std::move(s));
}

// What one L7 connection's hooks work on, in one allocation: the hooks
// capture a pointer to it (ExchangeHooks::owner keeps it alive), so none
// of them needs a heap block of its own.
struct L7Entry::Connection {
  Connection(Worker* worker, L7Flow f) : w(worker), flow(std::move(f)) {}
  Worker* w;
  const L7Flow flow;
  std::vector<int> scratch;                 // the policy's matches
  std::unique_ptr<L7ServiceRouter> router;  // a service balanced per request
};

// A service balanced per request: its router picks each request's
// endpoint and judges policy against it, learns from each attempt, and
// picks again for a retry.
void L7Entry::ServiceHooks(Connection* c, http::H1Proxy::Hooks* hooks) {
  Worker* w = c->w;
  auto rt = w->shared().runtime.Get();
  c->router = std::make_unique<L7ServiceRouter>(
      L7ServiceRouter::Env{.balancers = &w->l7_balancers(*rt),
                           .source = c->flow.source_identity,
                           .source_text = c->flow.source_text,
                           .enforce = w->shared().policy.Enforcing(),
                           .stats = &w->stats()},
      c->flow.service);
  hooks->judge = [c](const http::H1Head&, const http::RequestView& view, http::ExchangeVerdict* v) {
    c->router->Route(*c->w->shared().runtime.Get(), view, v);
  };
  hooks->on_request = [c](const http::H1Proxy::Record& r) {
    c->w->L7Request(c->flow, c->router->DestinationText(r.state.get()), r);
  };
  hooks->on_attempt = [c](const http::ExchangeAttempt& a) { c->router->Finished(a); };
  hooks->retry = [c](http::ExchangeState* state, Destination* next, int* endpoint) {
    return c->router->Retry(*c->w->shared().runtime.Get(), state, next, endpoint);
  };
}

std::shared_ptr<L7Entry> L7Entry::Start(Worker* worker, StreamIo client, L7Flow flow) {
  std::shared_ptr<L7Entry> e(new L7Entry(worker, std::move(client), std::move(flow)));
  if (!e->client_.Watch(worker->loop(), e.get(), EPOLLIN).ok()) return nullptr;
  worker->L7ConnectionStarted();  // until Close, or the end of the proxy it hands to
  e->timer_ = worker->loop().After(kDetectWait, [weak = e->weak_from_this()] {
    if (auto self = weak.lock()) {
      self->timer_ = 0;
      self->Decide(http::Detected::kOther);  // nothing that says HTTP in time
    }
  });
  return e;
}

L7Entry::L7Entry(Worker* worker, StreamIo client, L7Flow flow)
    : worker_(worker), client_(std::move(client)), flow_(std::move(flow)) {}

L7Entry::~L7Entry() {
  if (timer_ != 0) worker_->loop().Cancel(timer_);
  client_.Unwatch(worker_->loop());
}

void L7Entry::OnEvents(uint32_t) {
  if (decided_) return;
  char buf[kDetectBytes];
  const size_t want = kDetectBytes - first_.size();
  const ssize_t n = client_.Recv(buf, want);
  if (n > 0) {
    first_.append(buf, static_cast<size_t>(n));
    const http::Detected d = http::DetectProtocol(first_);
    if (d != http::Detected::kNeedMore) return Decide(d);
    if (first_.size() >= kDetectBytes) return Decide(http::Detected::kOther);
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  // Closed or reset before it said anything useful: nothing to carry.
  Close(n < 0);
}

void L7Entry::Close(bool reset) {
  decided_ = true;
  worker_->L7ConnectionEnded();
  if (timer_ != 0) worker_->loop().Cancel(timer_);
  timer_ = 0;
  client_.Unwatch(worker_->loop());
  client_.Close(reset);
  worker_->L7Done(this);
}

void L7Entry::Decide(http::Detected what) {
  if (decided_) return;
  Worker* w = worker_;
  ProxyShared& shared = w->shared();
  const bool enforce = shared.policy.Enforcing();
  const bool http1 = what == http::Detected::kHttp1;
  const bool http2 = what == http::Detected::kHttp2;
  if (!http1 && !http2) {
    // Other protocols cannot be judged by HTTP routes.
    const char* reason = "l7-not-http";
    w->stats().Add(enforce ? Stat::kL7Refused : Stat::kL7RelayedNotHttp);
    w->stats().Refuse({.reason = reason,
                       .peer = flow_.source_text,
                       .source = flow_.source.AddressText(),
                       .destination = flow_.destination.ToAuthority(),
                       .type = "l7",
                       .enforced = enforce});
    if (enforce) return Close(/*reset=*/true);
  }
  decided_ = true;
  if (timer_ != 0) w->loop().Cancel(timer_);
  timer_ = 0;
  client_.Unwatch(w->loop());
  const ProxyOptions::L7Limits& limits = shared.options.l7;
  http::H1Proxy::Options options;
  options.relay = !http1;
  options.limits = {.max_head_bytes = limits.max_header_bytes, .max_headers = limits.max_headers};
  options.head_timeout_ms = limits.header_timeout_ms;
  options.idle_timeout_ms = limits.idle_timeout_ms;
  options.connect_timeout_ms = limits.connect_timeout_ms;
  options.stream_idle_timeout_ms = limits.stream_idle_timeout_ms;
  options.upstream_pool = &shared.upstreams;
  http::H1Proxy::Hooks hooks;
  auto conn = std::make_shared<Connection>(w, std::move(flow_));
  hooks.owner = conn;
  Connection* c = conn.get();
  options.pool_source = &c->flow.source;  // kept alive by hooks.owner, as long as the proxy
  const L7Flow& flow = c->flow;
  hooks.judge = [c](const http::H1Head&, const http::RequestView& view, http::ExchangeVerdict* v) {
    auto rt = c->w->shared().runtime.Get();
    http::L7Policy::Decision d =
        rt->l7->Judge(c->flow.source_identity, c->flow.destination_identity,
                      c->flow.destination.port, view, &c->scratch);
    // Into the verdict's strings: no allocation once they have grown.
    v->route.assign(d.route.data(), d.route.size());
    v->reason.assign(d.reason.data(), d.reason.size());
    // Permissive policy mode: judged and reported, forwarded all the same.
    v->allow = d.allow || !c->w->shared().policy.Enforcing();
  };
  hooks.on_request = [c](const http::H1Proxy::Record& r) {
    c->w->L7Request(c->flow, c->flow.destination_text, r);
  };
  if (flow.service) ServiceHooks(c, &hooks);
  hooks.on_done = [w](const void* p) {
    w->L7ConnectionEnded();
    w->L7Done(p);
  };
  hooks.open_upstream = [c](const Destination& to, bool* connected) {
    Worker* w = c->w;
    // A service's endpoint on another node: a tunnel stream, read and
    // written in process (or plaintext to a meshless node in permissive mode).
    if (c->flow.service && w->shared().runtime.Get()->NodeOfRemotePod(to.AddressText())) {
      bool plaintext = false;
      StreamIo stream = w->OpenTunnelStream(c->flow, to, &plaintext);
      if (!plaintext) {
        *connected = true;
        return stream;
      }
      // A meshless node (permissive mode): no proxy there judges the
      // request, and the kernel did not police this connection (the
      // service's requests are this layer's): a connect failure, so a
      // retry goes elsewhere, unless policy is permissive.
      if (!w->PlaintextToMeshless(c->flow.source.AddressText(), to)) return StreamIo();
    }
    SourceKept kept = SourceKept::kNotAsked;
    lib::UniqueFd fd =
        OpenPodSocket(to, w->shared().options.transparent ? &c->flow.source : nullptr, &kept);
    if (kept == SourceKept::kFailed) w->stats().Add(Stat::kInboundTransparentFailed);
    return StreamIo(std::move(fd));
  };
  // Where the upstream speaks only the other HTTP version (its Service
  // port's appProtocol), H2Proxy maps each request (h1_session.h).
  const auto rt = shared.runtime.Get();  // (holds what upstream_http views)
  const absl::string_view upstream_http =
      flow.service ? absl::string_view(flow.service->config.upstream_http)
                   : rt->UpstreamHttpAt(flow.destination);
  const bool h1_to_h2 = http1 && upstream_http == "h2c";
  const bool h2_to_h1 = http2 && upstream_http == "http1";
  if (h1_to_h2 || h2_to_h1) w->stats().Add(Stat::kL7ConnectionsMapped);
  if (http2 || h1_to_h2) {
    if (http2) w->stats().Add(Stat::kL7Http2Connections);
    http::H2Proxy::Options h2;
    h2.downstream_http1 = h1_to_h2;
    h2.upstream_http1 = h2_to_h1;
    h2.h1_limits = options.limits;
    h2.limits.max_header_list = limits.max_header_bytes;
    h2.idle_timeout_ms = limits.idle_timeout_ms;
    h2.connect_timeout_ms = limits.connect_timeout_ms;
    h2.stream_idle_timeout_ms = limits.stream_idle_timeout_ms;
    auto p = http::H2Proxy::Start(&w->loop(), std::move(client_), flow.destination, h2,
                                  std::move(hooks), first_);
    if (p) w->KeepL7(p.get(), p);
    if (!p) w->L7ConnectionEnded();
    return w->L7Done(this);
  }
  auto p = http::H1Proxy::Start(&w->loop(), std::move(client_), flow.destination, options,
                                std::move(hooks), first_);
  if (p) w->KeepL7(p.get(), p);
  if (!p) w->L7ConnectionEnded();
  w->L7Done(this);
}

}  // namespace shunt::proxy
