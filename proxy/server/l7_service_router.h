// Services balanced per request (docs/l7.md "Services balanced per
// request"): the kernel sends a meshed pod's connection to such a service's
// address to the L7 layer (SHUNT_SVC_F_L7), and each of its requests is
// routed here: the TrafficSplit's matches choose the backend set, the
// weights a leaf service, and the latency-aware balancer (power of two
// choices over peak EWMA, outlier ejection) one of its endpoints; policy is
// then judged against that endpoint's identity, as the kernel would have
// judged a connection to it. Retries of a failed request pick again, within
// the service's retry budget.
//
// The balancing state lives per worker thread (L7Balancers): no locks on
// the request path; each thread learns latencies from its own requests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "agent/model/smi.h"
#include "nlohmann/json.hpp"
#include "proxy/control/l7_service_config.h"
#include "proxy/http/balancer.h"
#include "proxy/http/h1_proxy.h"
#include "proxy/http/retry_budget.h"
#include "proxy/http/route_matcher.h"
#include "proxy/server/proxy_stats.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

struct Runtime;

// One L7 service as the Runtime holds it: its config and its split's
// compiled matches.
struct CompiledL7Service {
  L7Service config;
  std::unique_ptr<http::RouteMatcher> split_matcher;  // null: the split matches nothing
};

// Per worker: each leaf's balancer and each service's retry budget.
class L7Balancers {
 public:
  struct Leaf {
    std::vector<L7Endpoint> endpoints;
    std::vector<Destination> addrs;  // parallel
    http::RequestBalancer balancer;
    Leaf(std::vector<L7Endpoint> eps, const model::L7Settings& s);
  };
  // The state of `backend` (a leaf of `svc`): kept while its endpoints and
  // settings stay the same, so latencies and ejections outlive
  // configuration changes that do not concern them.
  std::shared_ptr<Leaf> LeafFor(const L7Service& svc, const L7Backend& backend);
  http::RetryBudget& BudgetFor(const L7Service& svc);
  // Forgets the services the Runtime no longer has.
  void Sweep(const Runtime& rt);
  // What `shuntctl lb explain` shows of this thread's balancing: per leaf,
  // each endpoint's health (healthy, ejected, probing), requests in flight
  // and score, and the last choices, in the kernel's words.
  nlohmann::json Snapshot(int64_t now_ns);
  uint64_t generation() const { return generation_; }
  absl::BitGen& bits() { return bits_; }

 private:
  struct LeafEntry {
    model::L7Settings settings;
    std::shared_ptr<Leaf> leaf;
  };
  struct Budget {
    double ratio;
    std::unique_ptr<http::RetryBudget> budget;
  };
  std::map<std::string, LeafEntry> leaves_;  // "service|port|leaf"
  std::map<std::string, Budget> budgets_;    // "service|port"
  uint64_t generation_ = 0;
  absl::BitGen bits_;
};

// One connection's requests to one L7 service. What it decides for a
// request (the backend set its matches chose, the leaf and endpoint
// picked, the request policy was judged on) is kept in the request's own
// RouteState, which the verdict carries and the hooks give back: an
// HTTP/2 connection's streams are routed, learnt from and retried each on
// its own request, whatever order they end in.
class L7ServiceRouter {
 public:
  struct Env {
    L7Balancers* balancers;
    model::Subject source;  // the client pod's identity
    std::string source_text;
    bool enforce;  // policy mode: enforce denies, permissive reports
    ProxyStats* stats = nullptr;
  };
  L7ServiceRouter(Env env, std::shared_ptr<const CompiledL7Service> svc);

  // A request's verdict, into *v (Reset): where it goes (and how long it
  // may take, how many retries it may make) or why it is denied; v->state
  // is the request's RouteState.
  void Route(const Runtime& rt, const http::RequestView& view, http::ExchangeVerdict* v);
  // The end of an attempt: the balancer of the leaf it went to learns its
  // latency and outcome.
  void Finished(const http::ExchangeAttempt& a);
  // A retry of the request whose verdict holds `state`: its budget, and a
  // new pick (another endpoint when there is one).
  bool Retry(const Runtime& rt, http::ExchangeState* state, Destination* next, int* endpoint);
  // The destination identity of the request's last pick ("ns/sa", or the
  // leaf service for an endpoint of another node), for metrics and drops.
  const std::string& DestinationText(const http::ExchangeState* state) const;

 private:
  struct RouteState : http::ExchangeState {
    const std::vector<L7Backend>* set = nullptr;  // the backend set its matches chose
    std::shared_ptr<L7Balancers::Leaf> leaf;      // the last pick's
    int picked = -1;
    // The request, kept to judge a retry's new endpoint (the head is
    // gone by then); only when the service retries.
    std::string method, path;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string destination_text;
  };
  // A RouteState no request holds any more (its strings keep their
  // memory), or a new one.
  std::shared_ptr<RouteState> FreeState();
  // Picks an endpoint of st's backend set for `view`, judging policy
  // against it; false with *v set when the request goes nowhere.
  bool Pick(const Runtime& rt, const http::RequestView& view, int avoid,
            const L7Balancers::Leaf* avoid_leaf, RouteState* st, http::ExchangeVerdict* v);

  Env env_;
  std::shared_ptr<const CompiledL7Service> svc_;
  // States for reuse: HTTP/1.1 needs one or two, HTTP/2 one per stream in
  // flight (up to kKeptStates kept; more are made and freed per request).
  static constexpr size_t kKeptStates = 16;
  std::vector<std::shared_ptr<RouteState>> states_;
  std::vector<int> matched_;  // scratch
};

}  // namespace shunt::proxy
