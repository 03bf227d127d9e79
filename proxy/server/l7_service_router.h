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

// One connection's requests to one L7 service. Requests on a connection
// come one at a time, so it remembers the last pick for the answer and a
// retry.
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

  // A request's verdict: where it goes (and how long it may take, how many
  // retries it may make) or why it is denied.
  http::H1Proxy::Verdict Route(const Runtime& rt, const http::RequestView& view);
  // The end of an attempt: the balancer learns its latency and outcome.
  void Finished(const http::H1Proxy::Attempt& a);
  // A retry of the last request: its budget, and a new pick (another
  // endpoint when there is one).
  bool Retry(const Runtime& rt, Destination* next, int* endpoint);
  // The destination identity of the last pick ("ns/sa", or the leaf
  // service for an endpoint of another node), for metrics and drops.
  const std::string& destination_text() const { return destination_text_; }

 private:
  // Picks an endpoint of the backend set for `view`, judging policy
  // against it; false with *v set when the request goes nowhere.
  bool Pick(const Runtime& rt, const http::RequestView& view, int avoid,
            const L7Balancers::Leaf* avoid_leaf, http::H1Proxy::Verdict* v);

  Env env_;
  std::shared_ptr<const CompiledL7Service> svc_;
  const std::vector<L7Backend>* set_ = nullptr;  // the last request's backend set
  std::shared_ptr<L7Balancers::Leaf> leaf_;      // the last pick's
  int picked_ = -1;
  std::vector<int> matched_;  // scratch
  // The last request, kept to judge a retry's new endpoint.
  std::string method_, path_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::string destination_text_;
};

}  // namespace shunt::proxy
