#include "proxy/server/l7_service_router.h"

#include <arpa/inet.h>

#include <chrono>

#include "absl/random/distributions.h"
#include "absl/strings/str_cat.h"
#include "proxy/server/l7_entry.h"
#include "proxy/server/runtime.h"

namespace shunt::proxy {
namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ServiceKey(const L7Service& svc) { return absl::StrCat(svc.service, "|", svc.port); }

http::RequestBalancer::Options BalancerOptions(const model::L7Settings& s) {
  http::RequestBalancer::Options o;
  o.health.consecutive_failures = s.outlier_consecutive_failures;
  o.health.ejection_ns = s.outlier_ejection_ms * 1'000'000;
  if (o.health.max_ejection_ns < o.health.ejection_ns)
    o.health.max_ejection_ns = o.health.ejection_ns;
  return o;
}

std::vector<http::RequestBalancer::Endpoint> BalancerEndpoints(const std::vector<L7Endpoint>& eps) {
  std::vector<http::RequestBalancer::Endpoint> out;
  for (const L7Endpoint& e : eps) {
    services::BackendAddr a;
    inet_pton(AF_INET, e.address.c_str(), &a.ip_be);  // services are IPv4
    a.port = e.port;
    out.push_back({.addr = a, .name = absl::StrCat(e.address, ":", e.port)});
  }
  return out;
}

}  // namespace

L7Balancers::Leaf::Leaf(std::vector<L7Endpoint> eps, const model::L7Settings& s)
    : endpoints(std::move(eps)), balancer(BalancerEndpoints(endpoints), BalancerOptions(s)) {
  for (const L7Endpoint& e : endpoints) {
    Destination d;
    if (inet_pton(AF_INET, e.address.c_str(), d.addr.data()) != 1) {
      d.family = AF_INET6;
      inet_pton(AF_INET6, e.address.c_str(), d.addr.data());
    }
    d.port = e.port;
    addrs.push_back(d);
  }
}

std::shared_ptr<L7Balancers::Leaf> L7Balancers::LeafFor(const L7Service& svc,
                                                        const L7Backend& backend) {
  LeafEntry& e = leaves_[absl::StrCat(ServiceKey(svc), "|", backend.service)];
  if (!e.leaf || !(e.settings == svc.settings) || e.leaf->endpoints != backend.endpoints) {
    e.settings = svc.settings;
    e.leaf = std::make_shared<Leaf>(backend.endpoints, svc.settings);
  }
  return e.leaf;
}

http::RetryBudget& L7Balancers::BudgetFor(const L7Service& svc) {
  Budget& b = budgets_[ServiceKey(svc)];
  if (!b.budget || b.ratio != svc.settings.retry_budget) {
    b.ratio = svc.settings.retry_budget;
    http::RetryBudget::Options o;
    o.ratio = b.ratio;
    b.budget = std::make_unique<http::RetryBudget>(o);
  }
  return *b.budget;
}

void L7Balancers::Sweep(const Runtime& rt) {
  generation_ = rt.config.generation;
  std::set<std::string> live;
  for (const L7Service& s : rt.config.l7_services) live.insert(ServiceKey(s));
  auto service_of = [](const std::string& key) {
    const size_t second = key.find('|', key.find('|') + 1);
    return key.substr(0, second);
  };
  for (auto it = leaves_.begin(); it != leaves_.end();)
    it = live.count(service_of(it->first)) ? std::next(it) : leaves_.erase(it);
  for (auto it = budgets_.begin(); it != budgets_.end();)
    it = live.count(it->first) ? std::next(it) : budgets_.erase(it);
}

nlohmann::json L7Balancers::Snapshot(int64_t now_ns) {
  nlohmann::json leaves = nlohmann::json::array();
  for (auto& [key, entry] : leaves_) {
    // "service|port|leaf"
    const size_t a = key.find('|'), b = key.find('|', a + 1);
    http::RequestBalancer& bal = entry.leaf->balancer;
    nlohmann::json endpoints = nlohmann::json::array();
    for (size_t i = 0; i < entry.leaf->endpoints.size(); ++i) {
      const int idx = static_cast<int>(i);
      http::EndpointHealth& h = bal.health(idx);
      const http::EndpointHealth::State st = h.state(now_ns);
      nlohmann::json e = {
          {"address", bal.endpoints()[i].name},  {"state", http::EndpointHealth::StateName(st)},
          {"ejections", h.ejections()},          {"ejections_total", h.ejections_total()},
          {"outstanding", bal.outstanding(idx)}, {"score", bal.Score(idx, now_ns)}};
      if (st == http::EndpointHealth::State::kEjected)
        e["ejected_for_ms"] = (h.ejected_until_ns() - now_ns) / 1'000'000;
      endpoints.push_back(std::move(e));
    }
    nlohmann::json choices = nlohmann::json::array();
    for (const http::RequestBalancer::Choice& c : bal.recent()) {
      if (choices.size() >= 20) break;
      nlohmann::json cands = nlohmann::json::array();
      for (int k = 0; k < 2 && c.candidates[k] >= 0; ++k) {
        nlohmann::json x = {
            {"address", bal.endpoints()[static_cast<size_t>(c.candidates[k])].name}};
        if (c.candidates[1] >= 0) x["score"] = c.scores[k];
        cands.push_back(std::move(x));
      }
      choices.push_back(
          {{"ago_ms", static_cast<double>(now_ns - c.at_ns) / 1e6},
           {"candidates", std::move(cands)},
           {"picked", {{"address", bal.endpoints()[static_cast<size_t>(c.picked)].name}}},
           {"why", c.why}});
    }
    leaves.push_back({{"service", key.substr(0, a)},
                      {"port", std::stoi(key.substr(a + 1, b - a - 1))},
                      {"leaf", key.substr(b + 1)},
                      {"endpoints", std::move(endpoints)},
                      {"choices", std::move(choices)}});
  }
  return leaves;
}

L7ServiceRouter::L7ServiceRouter(Env env, std::shared_ptr<const CompiledL7Service> svc)
    : env_(std::move(env)), svc_(std::move(svc)) {}

std::shared_ptr<L7ServiceRouter::RouteState> L7ServiceRouter::FreeState() {
  // One thread owns the router and every verdict holding its states: a
  // use count of one is the router's own reference.
  for (const std::shared_ptr<RouteState>& s : states_)
    if (s.use_count() == 1) return s;
  auto s = std::make_shared<RouteState>();
  if (states_.size() < kKeptStates) states_.push_back(s);
  return s;
}

void L7ServiceRouter::Route(const Runtime& rt, const http::RequestView& view,
                            http::ExchangeVerdict* v) {
  const L7Service& cfg = svc_->config;
  std::shared_ptr<RouteState> st = FreeState();
  st->leaf.reset();
  st->picked = -1;
  st->destination_text.clear();
  if (cfg.settings.retries > 0) {
    // Kept for judging a retry's endpoint (the head is gone by then).
    st->method.assign(view.method.data(), view.method.size());
    st->path.assign(view.path.data(), view.path.size());
    st->headers.resize(view.headers.size());
    for (size_t i = 0; i < view.headers.size(); ++i) {
      st->headers[i].first.assign(view.headers[i].first.data(), view.headers[i].first.size());
      st->headers[i].second.assign(view.headers[i].second.data(), view.headers[i].second.size());
    }
  }
  st->set = &cfg.backends;
  if (svc_->split_matcher && !cfg.split_backends.empty()) {
    svc_->split_matcher->Match(view, &matched_);
    if (!matched_.empty()) st->set = &cfg.split_backends;
  }
  v->timeout_ms = static_cast<int>(cfg.settings.timeout_ms);
  v->retries = cfg.settings.retries;
  v->retry_on_5xx = cfg.settings.retry_on_5xx;
  v->retry_on_connect_failure = cfg.settings.retry_on_connect_failure;
  v->retry_on_reset = cfg.settings.retry_on_reset;
  v->state = st;
  if (!Pick(rt, view, -1, nullptr, st.get(), v)) return;
  env_.balancers->BudgetFor(cfg).Deposit(NowNs());
}

bool L7ServiceRouter::Pick(const Runtime& rt, const http::RequestView& view, int avoid,
                           const L7Balancers::Leaf* avoid_leaf, RouteState* st,
                           http::ExchangeVerdict* v) {
  const L7Service& cfg = svc_->config;
  uint64_t total = 0;
  for (const L7Backend& b : *st->set)
    if (!b.endpoints.empty()) total += b.weight;
  if (total == 0) {
    v->allow = false;
    v->status = 503;
    v->reason = absl::StrCat("no-endpoints: ", cfg.service);
    st->destination_text = cfg.service;
    return false;
  }
  // A leaf by its weight, then one of its endpoints by latency.
  uint64_t draw = absl::Uniform<uint64_t>(env_.balancers->bits(), 0, total);
  const L7Backend* backend = nullptr;
  for (const L7Backend& b : *st->set) {
    if (b.endpoints.empty()) continue;
    backend = &b;
    if (draw < b.weight) break;
    draw -= b.weight;
  }
  st->leaf = env_.balancers->LeafFor(cfg, *backend);
  L7Balancers::Leaf& leaf = *st->leaf;
  const int64_t now = NowNs();
  auto choice = leaf.balancer.Pick(now, env_.balancers->bits());
  if (choice && &leaf == avoid_leaf && choice->picked == avoid && leaf.endpoints.size() > 1) {
    // A retry goes elsewhere when there is somewhere else.
    leaf.balancer.Cancelled(choice->picked);
    auto again = leaf.balancer.Pick(now, env_.balancers->bits());
    if (again) choice = again;
  }
  st->picked = choice->picked;
  const Destination& to = leaf.addrs[static_cast<size_t>(st->picked)];
  const std::string address = to.AddressText();
  // Policy against the endpoint, as the kernel judges a connection to a
  // pod: a local pod's TrafficTargets are this proxy's to judge; another
  // node's pod is judged by its node's proxy, on the identity the tunnel's
  // certificate proves; an address that is no pod is not policed.
  if (const std::string* id = rt.IdentityOfLocalPod(address)) {
    st->destination_text = *id;
    http::L7Policy::Decision d =
        rt.l7->Judge(env_.source, SubjectOf(*id), to.port, view, &matched_);
    v->route.assign(d.route.data(), d.route.size());
    if (!d.allow) {
      v->reason.assign(d.reason.data(), d.reason.size());
      if (env_.enforce) {
        leaf.balancer.Cancelled(st->picked);
        v->allow = false;
        v->status = 403;
        return false;
      }
    }
  } else {
    st->destination_text = backend->service;
  }
  v->upstream = to;
  v->endpoint = st->picked;
  return true;
}

void L7ServiceRouter::Finished(const http::ExchangeAttempt& a) {
  auto* st = static_cast<RouteState*>(a.state);
  if (!st || !st->leaf || a.endpoint < 0) return;
  // The attempt went to st's last pick: the leaf learns of its endpoint.
  if (a.status < 0) return st->leaf->balancer.Cancelled(a.endpoint);
  st->leaf->balancer.Finished(a.endpoint, NowNs(), a.latency_ns, a.failure, a.status > 0);
}

bool L7ServiceRouter::Retry(const Runtime& rt, http::ExchangeState* state, Destination* next,
                            int* endpoint) {
  auto* st = static_cast<RouteState*>(state);
  if (!st || !st->set || !st->leaf) return false;
  if (!env_.balancers->BudgetFor(svc_->config).TryWithdraw(NowNs())) {
    if (env_.stats) env_.stats->Add(Stat::kL7RetriesOverBudget);
    return false;
  }
  http::RequestView view{.method = st->method, .path = st->path, .headers = {}};
  for (const auto& [n, v] : st->headers) view.headers.emplace_back(n, v);
  http::ExchangeVerdict v;
  const std::shared_ptr<L7Balancers::Leaf> failed = st->leaf;
  if (!Pick(rt, view, st->picked, failed.get(), st, &v)) return false;
  *next = *v.upstream;
  *endpoint = v.endpoint;
  if (env_.stats) env_.stats->Add(Stat::kL7Retries);
  return true;
}

const std::string& L7ServiceRouter::DestinationText(const http::ExchangeState* state) const {
  static const std::string kNone;
  const auto* st = static_cast<const RouteState*>(state);
  return st ? st->destination_text : kNone;
}

}  // namespace shunt::proxy
