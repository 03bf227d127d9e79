#include "resources.h"

namespace shunt::source::kube {
namespace {

// Copies `keys` of `from` (when present) into a new object.
nlohmann::json Pick(const nlohmann::json& from, std::initializer_list<const char*> keys) {
  nlohmann::json out = nlohmann::json::object();
  if (!from.is_object()) return out;
  for (const char* k : keys)
    if (auto it = from.find(k); it != from.end()) out[k] = *it;
  return out;
}

std::string StringAt(const nlohmann::json& o, const char* a, const char* b) {
  auto it = o.find(a);
  if (it == o.end() || !it->is_object()) return "";
  auto jt = it->find(b);
  return jt != it->end() && jt->is_string() ? jt->get<std::string>() : "";
}

// Of the annotations, only the one Shunt reads (shunt.dev/short-circuit).
void KeepShuntAnnotation(const nlohmann::json& meta, nlohmann::json& out) {
  auto a = meta.find("annotations");
  if (a == meta.end() || !a->is_object()) return;
  if (auto v = a->find("shunt.dev/short-circuit"); v != a->end())
    out["annotations"]["shunt.dev/short-circuit"] = *v;
}

}  // namespace

std::optional<nlohmann::json> KeepNamespace(const nlohmann::json& ns) {
  if (!ns.is_object()) return std::nullopt;
  nlohmann::json out = Pick(ns, {"apiVersion", "kind"});
  const nlohmann::json meta = ns.value("metadata", nlohmann::json::object());
  out["metadata"] = Pick(meta, {"name"});
  KeepShuntAnnotation(meta, out["metadata"]);
  return out;
}

std::optional<nlohmann::json> KeepPod(const nlohmann::json& pod, const std::string& node,
                                      bool local) {
  if (!pod.is_object()) return std::nullopt;
  const std::string pod_node = StringAt(pod, "spec", "nodeName");
  if (pod_node.empty() || (pod_node == node) != local) return std::nullopt;
  if (StringAt(pod, "status", "podIP").empty()) return std::nullopt;
  const std::string phase = StringAt(pod, "status", "phase");
  if (phase == "Succeeded" || phase == "Failed") return std::nullopt;
  const auto spec = pod.find("spec");
  if (auto h = spec->find("hostNetwork"); h != spec->end() && h->is_boolean() && h->get<bool>())
    return std::nullopt;
  nlohmann::json out = Pick(pod, {"apiVersion", "kind"});
  const nlohmann::json meta = pod.value("metadata", nlohmann::json::object());
  out["metadata"] = Pick(meta, {"name", "namespace", "uid", "labels", "ownerReferences",
                                "creationTimestamp", "deletionTimestamp"});
  KeepShuntAnnotation(meta, out["metadata"]);
  out["spec"] = Pick(*spec, {"nodeName", "serviceAccountName"});
  out["status"] = Pick(pod["status"], {"podIP", "podIPs", "hostIP", "phase"});
  return out;
}

std::optional<nlohmann::json> KeepObject(const nlohmann::json& object) {
  if (!object.is_object()) return std::nullopt;
  nlohmann::json out = object;
  out.erase("status");
  if (auto m = out.find("metadata"); m != out.end() && m->is_object()) {
    for (const char* k : {"managedFields", "resourceVersion", "generation", "selfLink"})
      m->erase(k);
    if (auto a = m->find("annotations"); a != m->end() && a->is_object()) {
      a->erase("kubectl.kubernetes.io/last-applied-configuration");
      if (a->empty()) m->erase("annotations");
    }
  }
  return out;
}

std::vector<ResourceSpec> MeshResources(const std::string& node) {
  auto crd = [](std::string name, std::vector<std::string> paths, std::string kind) {
    return ResourceSpec{.name = std::move(name),
                        .paths = std::move(paths),
                        .kind = std::move(kind),
                        .optional = true,
                        .keep = KeepObject};
  };
  return {
      {.name = "pods on this node",
       .paths = {"/api/v1/pods"},
       .kind = "Pod",
       .field_selector = "spec.nodeName=" + node,
       .keep = [node](const nlohmann::json& p) { return KeepPod(p, node, /*local=*/true); }},
      // Every pod, for the identity of addresses on other nodes; this
      // node's own come from the watch above (same pod, one origin).
      {.name = "pods on other nodes",
       .paths = {"/api/v1/pods"},
       .kind = "Pod",
       .keep = [node](const nlohmann::json& p) { return KeepPod(p, node, /*local=*/false); }},
      {.name = "services", .paths = {"/api/v1/services"}, .kind = "Service", .keep = KeepObject},
      // Only for their shunt.dev/short-circuit annotation.
      {.name = "namespaces",
       .paths = {"/api/v1/namespaces"},
       .kind = "Namespace",
       .keep = KeepNamespace},
      {.name = "endpointslices",
       .paths = {"/apis/discovery.k8s.io/v1/endpointslices"},
       .kind = "EndpointSlice",
       .keep = KeepObject},
      crd("traffictargets", {"/apis/access.smi-spec.io/v1alpha3/traffictargets"}, "TrafficTarget"),
      crd("httproutegroups", {"/apis/specs.smi-spec.io/v1alpha4/httproutegroups"},
          "HTTPRouteGroup"),
      crd("tcproutes", {"/apis/specs.smi-spec.io/v1alpha4/tcproutes"}, "TCPRoute"),
      crd("udproutes", {"/apis/specs.smi-spec.io/v1alpha4/udproutes"}, "UDPRoute"),
      // v1alpha4 where the CRD serves it; clusters with the older SMI CRDs
      // serve only v1alpha2.
      crd("trafficsplits",
          {"/apis/split.smi-spec.io/v1alpha4/trafficsplits",
           "/apis/split.smi-spec.io/v1alpha2/trafficsplits"},
          "TrafficSplit"),
  };
}

}  // namespace shunt::source::kube
