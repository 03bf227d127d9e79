#include "agent/model/smi_json.h"

namespace shunt::model {
namespace {

using Json = nlohmann::json;

Json MetaJson(const std::string& ns, const std::string& name) {
  return {{"namespace", ns}, {"name", name}};
}

Json SubjectJson(const Subject& s) {
  return {{"kind", "ServiceAccount"}, {"name", s.name}, {"namespace", s.namespace_}};
}

}  // namespace

Json TrafficTargetToJson(const TrafficTarget& t) {
  Json dest = SubjectJson(t.destination);
  if (t.destination_port) dest["port"] = *t.destination_port;
  Json sources = Json::array();
  for (const Subject& s : t.sources) sources.push_back(SubjectJson(s));
  Json rules = Json::array();
  for (const TargetRule& r : t.rules) {
    Json j = {{"kind", RouteKindName(r.kind)}, {"name", r.name}};
    if (!r.matches.empty()) j["matches"] = r.matches;
    rules.push_back(std::move(j));
  }
  return {{"apiVersion",
           t.api_version.empty() ? std::string("access.smi-spec.io/v1alpha3") : t.api_version},
          {"kind", "TrafficTarget"},
          {"metadata", MetaJson(t.namespace_, t.name)},
          {"spec", {{"destination", dest}, {"sources", sources}, {"rules", rules}}}};
}

Json PortRouteToJson(const PortRoute& r) {
  Json j = {{"apiVersion", "specs.smi-spec.io/v1alpha4"},
            {"kind", RouteKindName(r.kind)},
            {"metadata", MetaJson(r.namespace_, r.name)},
            {"spec", Json::object()}};
  if (!r.ports.empty()) j["spec"]["matches"] = {{"ports", r.ports}};
  return j;
}

Json HttpRouteGroupToJson(const HttpRouteGroup& g) {
  Json matches = Json::array();
  for (const HttpMatch& m : g.matches) {
    Json j = {{"name", m.name}};
    if (!m.path_regex.empty()) j["pathRegex"] = m.path_regex;
    if (!m.methods.empty()) j["methods"] = m.methods;
    if (!m.headers.empty()) {
      Json h = Json::object();
      for (const auto& [name, regex] : m.headers) h[name] = regex;
      j["headers"] = std::move(h);
    }
    matches.push_back(std::move(j));
  }
  return {{"apiVersion", "specs.smi-spec.io/v1alpha4"},
          {"kind", "HTTPRouteGroup"},
          {"metadata", MetaJson(g.namespace_, g.name)},
          {"spec", {{"matches", matches}}}};
}

}  // namespace shunt::model
