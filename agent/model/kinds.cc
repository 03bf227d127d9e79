#include "kinds.h"

#include "absl/strings/str_cat.h"

namespace shunt::model {
namespace {

// Wraps a parser's typed result as an Object. GCC 12 warns that moving a
// Service into the variant frees a stack object (-Wfree-nonheap-object) once
// the variant grew past a size: a false positive of its inliner (the move
// leaves an empty vector behind, nothing is freed), silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif
template <typename T>
absl::StatusOr<Object> AsObject(absl::StatusOr<T> parsed) {
  if (!parsed.ok()) return parsed.status();
  return Object(std::in_place_type<T>, *std::move(parsed));
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

template <typename T, std::vector<T> Objects::*kList>
void Add(const Object& o, Objects& out) {
  (out.*kList).push_back(std::get<T>(o));
}

}  // namespace

const std::vector<KindSpec>& Kinds() {
  static const std::vector<KindSpec> kinds = {
      {"Pod",
       {"v1"},
       true,
       [](const nlohmann::json& d, const std::string&) { return AsObject(ParsePod(d)); },
       Add<Pod, &Objects::pods>},
      {"TrafficTarget",
       {"access.smi-spec.io/v1alpha3", "access.smi-spec.io/v1alpha2"},
       false,
       [](const nlohmann::json& d, const std::string& api) {
         return AsObject(ParseTrafficTarget(d, api));
       },
       Add<TrafficTarget, &Objects::traffic_targets>},
      {"TCPRoute",
       {"specs.smi-spec.io/v1alpha4", "specs.smi-spec.io/v1alpha3"},
       false,
       [](const nlohmann::json& d, const std::string&) {
         return AsObject(ParsePortRoute(d, RouteKind::kTcp));
       },
       Add<PortRoute, &Objects::tcp_routes>},
      {"UDPRoute",
       {"specs.smi-spec.io/v1alpha4"},
       false,
       [](const nlohmann::json& d, const std::string&) {
         return AsObject(ParsePortRoute(d, RouteKind::kUdp));
       },
       Add<PortRoute, &Objects::udp_routes>},
      {"HTTPRouteGroup",
       {"specs.smi-spec.io/v1alpha4", "specs.smi-spec.io/v1alpha3"},
       false,
       [](const nlohmann::json& d, const std::string&) { return AsObject(ParseHttpRouteGroup(d)); },
       Add<HttpRouteGroup, &Objects::http_route_groups>},
      {"Service",
       {"v1"},
       true,
       [](const nlohmann::json& d, const std::string&) { return AsObject(ParseService(d)); },
       Add<Service, &Objects::services>},
      {"EndpointSlice",
       {"discovery.k8s.io/v1"},
       false,
       [](const nlohmann::json& d, const std::string&) { return AsObject(ParseEndpointSlice(d)); },
       Add<EndpointSlice, &Objects::endpoint_slices>},
      {"TrafficSplit",
       {"split.smi-spec.io/v1alpha4", "split.smi-spec.io/v1alpha3", "split.smi-spec.io/v1alpha2",
        "split.smi-spec.io/v1alpha1"},
       false,
       [](const nlohmann::json& d, const std::string& api) {
         return AsObject(ParseTrafficSplit(d, api));
       },
       Add<TrafficSplit, &Objects::traffic_splits>},
      {"Namespace",
       {"v1"},
       true,
       [](const nlohmann::json& d, const std::string&) { return AsObject(ParseNamespace(d)); },
       Add<Namespace, &Objects::namespaces>},
  };
  return kinds;
}

const KindSpec* FindKind(std::string_view kind) {
  for (const KindSpec& k : Kinds())
    if (k.kind == kind) return &k;
  return nullptr;
}

std::string WantedVersions(const KindSpec& spec) {
  // "group/v1, v2 or v3": the group once, then the versions.
  std::string out;
  std::string_view group;
  for (size_t i = 0; i < spec.versions.size(); ++i) {
    std::string_view v = spec.versions[i];
    const size_t slash = v.find('/');
    std::string_view g = slash == std::string_view::npos ? "" : v.substr(0, slash + 1);
    if (i == 0) {
      out = std::string(v);
      group = g;
      continue;
    }
    absl::StrAppend(&out, i + 1 == spec.versions.size() ? " or " : ", ",
                    std::string(g == group ? v.substr(g.size()) : v));
  }
  return out;
}

}  // namespace shunt::model
