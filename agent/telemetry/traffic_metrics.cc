#include "traffic_metrics.h"

#include <time.h>

#include <cmath>
#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "agent/lib/json_text.h"
#include "nlohmann/json.hpp"

namespace shunt::telemetry {
namespace {

using Json = nlohmann::json;
constexpr char kPrefix[] = "/apis/metrics.smi-spec.io/v1alpha1";

HttpAnswer Error(int status, const std::string& why) {
  // The Kubernetes Status shape, as an aggregated API server would answer.
  Json j = {{"kind", "Status"},    {"apiVersion", "v1"},
            {"status", "Failure"}, {"message", why},
            {"code", status},      {"reason", status == 404 ? "NotFound" : "BadRequest"}};
  return {status, "application/json", j.dump(-1, ' ', false, lib::kUtf8Replace)};
}

std::string Rfc3339(int64_t wall_ns) {
  const time_t secs = static_cast<time_t>(wall_ns / 1000000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &t);
  return buf;
}

// A Kubernetes quantity: integers as they are, fractions in milli-units.
std::string Quantity(double v) {
  const double milli = std::round(v * 1000);
  if (std::fmod(milli, 1000) == 0) return absl::StrCat(static_cast<int64_t>(milli / 1000));
  return absl::StrCat(static_cast<int64_t>(milli), "m");
}

struct Kind {
  const char* plural;
  const char* kind;           // as in ObjectReference
  const char* workload_kind;  // prefix of Peer::workload; nullptr for pods
};
constexpr Kind kKinds[] = {{"pods", "Pod", nullptr},
                           {"deployments", "Deployment", "deployment"},
                           {"statefulsets", "StatefulSet", "statefulset"},
                           {"daemonsets", "DaemonSet", "daemonset"},
                           {"replicasets", "ReplicaSet", "replicaset"},
                           {"jobs", "Job", "job"}};

// One side of a pod edge as a resource of the asked kind: {kind, namespace,
// name}, or empty when the side is not of that kind (another workload kind,
// an unmeshed address).
struct Ref {
  std::string kind, namespace_, name;
  bool empty() const { return name.empty(); }
  auto operator<=>(const Ref&) const = default;
};

Ref RefOf(const Kind* k, const std::string& ns, const std::string& pod,
          const std::string& workload) {
  if (ns.empty()) return {};  // not a pod we know
  if (!k) return {"Namespace", "", ns};
  if (!k->workload_kind) return {"Pod", ns, pod};
  const std::string prefix = absl::StrCat(k->workload_kind, "/");
  if (workload.rfind(prefix, 0) != 0) return {};
  return {k->kind, ns, workload.substr(prefix.size())};
}

Json RefJson(const Ref& r) {
  if (r.empty()) return Json::object();
  Json j = {{"kind", r.kind}, {"name", r.name}};
  if (!r.namespace_.empty()) j["namespace"] = r.namespace_;
  return j;
}

Json MetricsJson(const WindowTotals& t) {
  Json m = Json::array();
  for (auto [name, q] :
       {std::pair{"p99_response_latency", 0.99}, std::pair{"p90_response_latency", 0.90},
        std::pair{"p50_response_latency", 0.50}}) {
    if (t.response.empty())
      m.push_back({{"name", name}, {"unit", "ms"}, {"value", "0"}});
    else
      m.push_back(
          {{"name", name}, {"unit", "ms"}, {"value", Quantity(t.response.Quantile(q) / 1e6)}});
  }
  m.push_back({{"name", "success_count"}, {"value", Quantity(static_cast<double>(t.successes))}});
  m.push_back({{"name", "failure_count"}, {"value", Quantity(static_cast<double>(t.failures))}});
  return m;
}

void Add(WindowTotals& into, const WindowTotals& t) {
  into.successes += t.successes;
  into.failures += t.failures;
  into.response.Merge(t.response);
}

Json Item(const Ref& resource, const Json& edge, const WindowTotals& t, int64_t now, int window_s) {
  Json meta = {{"name", resource.name}, {"creationTimestamp", nullptr}};
  if (!resource.namespace_.empty()) meta["namespace"] = resource.namespace_;
  return {{"kind", "TrafficMetrics"},
          {"apiVersion", "metrics.smi-spec.io/v1alpha1"},
          {"metadata", meta},
          {"timestamp", Rfc3339(now)},
          {"window", absl::StrCat(window_s, "s")},
          {"resource", RefJson(resource)},
          {"edge", edge},
          {"metrics", MetricsJson(t)}};
}

Json List(const Json& resource, Json items) {
  return {{"kind", "TrafficMetricsList"},
          {"apiVersion", "metrics.smi-spec.io/v1alpha1"},
          {"metadata", Json::object()},
          {"resource", resource},
          {"items", std::move(items)}};
}

}  // namespace

HttpAnswer ServeTrafficMetrics(const std::string& path, const std::string& query,
                               const FlowAggregator& flows, int64_t now_wall_ns,
                               const RequestWindows* requests) {
  int window_s = 30;
  for (absl::string_view kv : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
    if (p.first != "window") continue;
    std::string v = p.second;
    int n = 0;
    bool ok = false;
    if (!v.empty() && v.back() == 's') {
      ok = absl::SimpleAtoi(v.substr(0, v.size() - 1), &n);
    } else if (!v.empty() && v.back() == 'm') {
      // Minutes past the limit are refused before they are multiplied
      // (window=99999999m overflowed int).
      ok = absl::SimpleAtoi(v.substr(0, v.size() - 1), &n) && n >= 1 &&
           n <= FlowAggregator::kMaxWindowSeconds / 60;
      if (ok) n *= 60;
    }
    if (!ok || n < 1 || n > FlowAggregator::kMaxWindowSeconds)
      return Error(400, absl::StrCat("window '", v, "': expected a duration from 1s to ",
                                     FlowAggregator::kMaxWindowSeconds, "s, such as 30s"));
    window_s = n;
  }
  if (path.rfind(kPrefix, 0) != 0) return Error(404, absl::StrCat("no such path: ", path));
  std::vector<std::string> parts =
      absl::StrSplit(path.substr(sizeof(kPrefix) - 1), '/', absl::SkipEmpty());
  if (parts.empty()) {
    // Discovery, as an APIService lists its resources.
    Json res = Json::array();
    for (const Kind& k : kKinds)
      res.push_back({{"name", k.plural},
                     {"namespaced", true},
                     {"kind", "TrafficMetrics"},
                     {"verbs", {"get", "list"}}});
    res.push_back({{"name", "namespaces"},
                   {"namespaced", false},
                   {"kind", "TrafficMetrics"},
                   {"verbs", {"get", "list"}}});
    return {200, "application/json",
            Json{{"kind", "APIResourceList"},
                 {"groupVersion", "metrics.smi-spec.io/v1alpha1"},
                 {"resources", res}}
                .dump(-1, ' ', false, lib::kUtf8Replace)};
  }
  if (parts[0] != "namespaces") return Error(404, absl::StrCat("no such resource: ", parts[0]));

  // Where the L7 layer saw requests, they are the unit (request_windows.h).
  const auto window =
      MergeRequests(flows.Window(now_wall_ns, window_s),
                    requests ? requests->Window(now_wall_ns, window_s)
                             : std::vector<std::pair<RouteEdgeKey, RequestTotals>>());
  // /namespaces and /namespaces/{ns}: namespaces as resources.
  const Kind* kind = nullptr;
  std::string ns, name;
  bool edges = false;
  if (parts.size() <= 2) {
    if (parts.size() == 2) name = parts[1];
  } else {
    ns = parts[1];
    for (const Kind& k : kKinds)
      if (parts[2] == k.plural) kind = &k;
    if (!kind)
      return Error(
          404, absl::StrCat("unknown kind '", parts[2],
                            "' (pods, deployments, statefulsets, daemonsets, replicasets, jobs)"));
    if (parts.size() >= 4) name = parts[3];
    if (parts.size() == 5 && parts[4] == "edges")
      edges = true;
    else if (parts.size() >= 5)
      return Error(404, absl::StrCat("no such path: ", path));
  }
  auto in_scope = [&](const Ref& r) {
    return !r.empty() && (kind == nullptr || r.namespace_ == ns);
  };

  if (!edges) {
    // Per resource: the traffic it serves, from all peers.
    std::map<Ref, WindowTotals> by_resource;
    for (const auto& [k, t] : window) {
      Ref dst = RefOf(kind, k.dst_namespace, k.dst_pod, k.dst_workload);
      if (in_scope(dst)) Add(by_resource[dst], t);
      // A client that serves nothing still appears, with zero counts.
      Ref src = RefOf(kind, k.src_namespace, k.src_pod, k.src_workload);
      if (in_scope(src)) by_resource.try_emplace(src);
    }
    const Json inbound = {{"direction", "from"}, {"resource", Json::object()}};
    if (!name.empty()) {
      const Ref want = kind ? Ref{kind->kind, ns, name} : Ref{"Namespace", "", name};
      auto it = by_resource.find(want);
      return {200, "application/json",
              Item(want, inbound, it == by_resource.end() ? WindowTotals{} : it->second,
                   now_wall_ns, window_s)
                  .dump(-1, ' ', false, lib::kUtf8Replace)};
    }
    Json items = Json::array();
    for (const auto& [r, t] : by_resource)
      items.push_back(Item(r, inbound, t, now_wall_ns, window_s));
    Json res = {{"kind", kind ? kind->kind : "Namespace"}};
    if (kind) res["namespace"] = ns;
    return {200, "application/json",
            List(res, std::move(items)).dump(-1, ' ', false, lib::kUtf8Replace)};
  }

  // Edges: one item per peer and direction.
  const Ref self{kind->kind, ns, name};
  std::map<std::pair<std::string, Ref>, WindowTotals> by_peer;  // direction, peer
  for (const auto& [k, t] : window) {
    Ref src = RefOf(kind, k.src_namespace, k.src_pod, k.src_workload);
    Ref dst = RefOf(kind, k.dst_namespace, k.dst_pod, k.dst_workload);
    if (src == self) {
      Ref peer = dst.empty() ? Ref{"Unmeshed", "", k.dst_workload} : dst;
      Add(by_peer[{"to", peer}], t);
    }
    if (dst == self) {
      Ref peer = src.empty() ? Ref{"Unmeshed", "", k.src_workload} : src;
      Add(by_peer[{"from", peer}], t);
    }
  }
  Json items = Json::array();
  for (const auto& [dp, t] : by_peer)
    items.push_back(Item(self, {{"direction", dp.first}, {"resource", RefJson(dp.second)}}, t,
                         now_wall_ns, window_s));
  return {200, "application/json",
          List(RefJson(self), std::move(items)).dump(-1, ' ', false, lib::kUtf8Replace)};
}

}  // namespace shunt::telemetry
