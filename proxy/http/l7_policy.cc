#include "proxy/http/l7_policy.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace shunt::proxy::http {
namespace {

// The key of a (source, destination) pair into *key (its memory reused).
void GrantKey(const model::Subject& source, const model::Subject& destination, std::string* key) {
  key->clear();
  for (absl::string_view p : {absl::string_view(source.namespace_), absl::string_view("/"),
                              absl::string_view(source.name), absl::string_view(" "),
                              absl::string_view(destination.namespace_), absl::string_view("/"),
                              absl::string_view(destination.name)})
    key->append(p.data(), p.size());
}

bool HasPort(const std::vector<uint16_t>& sorted, uint16_t port) {
  return std::binary_search(sorted.begin(), sorted.end(), port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<L7Policy>> L7Policy::Compile(const Input& in) {
  std::unique_ptr<L7Policy> p(new L7Policy());
  auto matcher = RouteMatcher::Compile(in.groups);
  if (!matcher.ok()) return matcher.status();
  p->matcher_ = *std::move(matcher);
  // Route indices of each (group key, match name), in the matcher's order.
  std::map<std::string, std::map<std::string, int>> routes_of;
  for (size_t i = 0; i < p->matcher_->routes().size(); ++i) {
    const auto& r = p->matcher_->routes()[i];
    routes_of[r.group].emplace(r.name, static_cast<int>(i));
  }
  std::map<std::string, const model::PortRoute*> tcp;
  for (const auto& r : in.tcp_routes)
    if (r.kind == model::RouteKind::kTcp) tcp.emplace(r.Key(), &r);

  for (const model::TrafficTarget& t : in.targets) {
    const std::string where = absl::StrCat("TrafficTarget ", t.Key());
    Grant g{.target = t.Key()};
    bool has_http = false, has_tcp = false, tcp_any = false, dangling_tcp_only = true;
    std::vector<uint16_t> tcp_ports;
    for (const model::TargetRule& rule : t.rules) {
      const std::string ref = t.namespace_ + "/" + rule.name;
      if (rule.kind == model::RouteKind::kTcp) {
        has_tcp = true;
        auto it = tcp.find(ref);
        if (it == tcp.end()) {
          p->problems_.push_back(absl::StrCat(where, ": TCPRoute ", ref, " does not exist"));
          continue;
        }
        dangling_tcp_only = false;
        if (it->second->ports.empty()) tcp_any = true;
        tcp_ports.insert(tcp_ports.end(), it->second->ports.begin(), it->second->ports.end());
      } else if (rule.kind == model::RouteKind::kHttp) {
        has_http = true;
        auto it = routes_of.find(ref);
        if (it == routes_of.end()) {
          p->problems_.push_back(
              absl::StrCat(where, ": HTTPRouteGroup ", ref, " does not exist (grants nothing)"));
          continue;
        }
        if (rule.matches.empty()) {
          for (const auto& [name, index] : it->second) g.routes.push_back(index);
        }
        for (const std::string& m : rule.matches) {
          auto r = it->second.find(m);
          if (r == it->second.end()) {
            p->problems_.push_back(absl::StrCat(where, ": HTTPRouteGroup ", ref, " has no match '",
                                                m, "' (grants nothing)"));
            continue;
          }
          g.routes.push_back(r->second);
        }
      }
    }
    if (!has_http && !has_tcp) continue;         // UDP only: nothing for HTTP
    if (has_tcp && dangling_tcp_only) continue;  // the ports it names do not exist
    if (!has_http) g.all_requests = true;
    if (has_tcp && !tcp_any) {
      g.any_port = false;
      g.ports = std::move(tcp_ports);
    }
    if (t.destination_port) {
      const uint16_t only = *t.destination_port;
      if (!g.any_port) {
        std::sort(g.ports.begin(), g.ports.end());
        if (!HasPort(g.ports, only)) continue;  // the two restrictions share no port
      }
      g.any_port = false;
      g.ports = {only};
    }
    std::sort(g.ports.begin(), g.ports.end());
    g.ports.erase(std::unique(g.ports.begin(), g.ports.end()), g.ports.end());
    std::sort(g.routes.begin(), g.routes.end());
    g.routes.erase(std::unique(g.routes.begin(), g.routes.end()), g.routes.end());
    if (!g.all_requests && g.routes.empty()) continue;
    for (const model::Subject& s : t.sources) {
      std::string key;
      GrantKey(s, t.destination, &key);
      p->grants_[key].push_back(g);
    }
  }
  return p;
}

L7Policy::Decision L7Policy::Judge(const model::Subject& source, const model::Subject& destination,
                                   uint16_t port, const RequestView& request,
                                   std::vector<int>* scratch) const {
  Decision d;
  thread_local std::string key;
  GrantKey(source, destination, &key);
  auto it = grants_.find(absl::string_view(key));
  bool any = false;
  if (it != grants_.end()) {
    for (const Grant& g : it->second) {
      if (!g.any_port && !HasPort(g.ports, port)) continue;
      any = true;
      if (g.all_requests) {
        d.allow = true;
        d.target = g.target;
        return d;
      }
    }
  }
  if (!any) {
    d.reason = "no-grant";
    return d;
  }
  matcher_->Match(request, scratch);
  for (const Grant& g : it->second) {
    if (!g.any_port && !HasPort(g.ports, port)) continue;
    for (int r : *scratch) {
      if (std::binary_search(g.routes.begin(), g.routes.end(), r)) {
        d.allow = true;
        d.target = g.target;
        d.route = matcher_->routes()[static_cast<size_t>(r)].key;
        return d;
      }
    }
  }
  if (scratch->empty()) {
    d.reason = "no-route-matched";
  } else {
    d.reason = "route-not-granted";
    d.route = matcher_->routes()[static_cast<size_t>(scratch->front())].key;
  }
  return d;
}

}  // namespace shunt::proxy::http
