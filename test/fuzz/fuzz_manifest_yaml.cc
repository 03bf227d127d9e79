// Fuzz target manifest_yaml: a manifest file as the file source reads it.
// Bytes -> YAML documents (yaml-cpp) -> JSON documents (YamlToJson) -> each
// kind's decoder and the object store's rules (ObjectStore::SetOrigin,
// Publish): Pods, Services, EndpointSlices, TrafficTargets, HTTPRouteGroups,
// TCPRoutes, UDPRoutes, TrafficSplits, v1 Lists.
//
// Beyond not crashing, for each input:
//  * a document that converted is written back as YAML (flow style, every
//    string double-quoted with escapes, every number plain) and read again:
//    it converts to the same document, so the scalar resolution agrees with
//    the types it made;
//  * its JSON text parses back to the same document (YamlToJson promised
//    UTF-8 strings, so dump() cannot throw);
//  * the store counts every document, every object in the snapshot has a
//    namespace and a name, and reading the same text again changes nothing.
#include <cmath>
#include <string>

#include "agent/model/object_store.h"
#include "agent/source/file_source.h"
#include "agent/source/yaml_json.h"
#include "test/fuzz/fuzz_check.h"
#include "yaml-cpp/yaml.h"

namespace shunt::fuzz {
namespace {

// The document as dump() writes it: a non-finite float becomes null.
nlohmann::json Normalised(const nlohmann::json& j) {
  if (j.is_number_float() && !std::isfinite(j.get<double>())) return nullptr;
  if (j.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : j.items()) out[k] = Normalised(v);
    return out;
  }
  if (j.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : j) out.push_back(Normalised(v));
    return out;
  }
  return j;
}

// A YAML double-quoted scalar: printable ASCII as it is, every other code
// point as \UXXXXXXXX (the input is valid UTF-8: YamlToJson checked it).
void Quote(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += len;
    if (cp >= 0x20 && cp < 0x7F && cp != '"' && cp != '\\') {
      out += static_cast<char>(cp);
    } else {
      char buf[11];
      std::snprintf(buf, sizeof(buf), "\\U%08X", cp);
      out += buf;
    }
  }
  out += '"';
}

// The document as YAML in flow style: mappings (with explicit keys) and
// sequences in braces and brackets, strings double-quoted, numbers,
// booleans and null plain.
void Emit(std::string& out, const nlohmann::json& j) {
  if (j.is_object()) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : j.items()) {
      if (!first) out += ", ";
      first = false;
      // An explicit key ("? "): an implicit one may not be longer than
      // 1024 characters, and escapes make keys long.
      out += "? ";
      Quote(out, k);
      out += ": ";
      Emit(out, v);
    }
    out += '}';
  } else if (j.is_array()) {
    out += '[';
    for (size_t i = 0; i < j.size(); ++i) {
      if (i > 0) out += ", ";
      Emit(out, j[i]);
    }
    out += ']';
  } else if (j.is_string()) {
    Quote(out, j.get<std::string>());
  } else {
    out += Normalised(j).dump();  // null, true, false, a number
  }
}

template <typename T>
void CheckNamed(const std::vector<T>& objects) {
  for (const T& o : objects) FUZZ_CHECK(!o.namespace_.empty() && !o.name.empty());
}

void CheckSnapshot(const model::Snapshot& s) {
  CheckNamed(s.pods);
  CheckNamed(s.traffic_targets);
  CheckNamed(s.tcp_routes);
  CheckNamed(s.udp_routes);
  CheckNamed(s.http_route_groups);
  CheckNamed(s.services);
  CheckNamed(s.endpoint_slices);
  CheckNamed(s.traffic_splits);
  for (const model::Problem& p : s.problems) FUZZ_CHECK(!p.reason.empty());
}

size_t Objects(const model::Snapshot& s) {
  return s.pods.size() + s.traffic_targets.size() + s.tcp_routes.size() + s.udp_routes.size() +
         s.http_route_groups.size() + s.services.size() + s.endpoint_slices.size() +
         s.traffic_splits.size();
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  using shunt::fuzz::Normalised;
  const std::string text(reinterpret_cast<const char*>(data), size);
  source::ManifestText parsed = source::ParseManifest("fuzz.yaml", text);
  if (parsed.syntax_error) {
    FUZZ_CHECK(parsed.docs.empty());
    FUZZ_CHECK(parsed.syntax_error->ref.line >= 1);
    return 0;
  }
  for (const model::Document& d : parsed.docs) {
    FUZZ_CHECK(d.where.line >= 1);
    if (!d.error.ok()) {
      FUZZ_CHECK(d.error.code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    const nlohmann::json want = Normalised(d.doc);
    FUZZ_CHECK(nlohmann::json::parse(d.doc.dump()) == want);
    std::string yaml;
    fuzz::Emit(yaml, d.doc);
    YAML::Node again;
    try {
      again = YAML::Load(yaml);
    } catch (const YAML::Exception& e) {
      std::fprintf(stderr, "re-read failed: %s\n%s\n", e.what(), yaml.c_str());
      FUZZ_CHECK(false);
    }
    auto converted = source::YamlToJson(again);
    FUZZ_CHECK(converted.ok());
    if (*converted != want)
      std::fprintf(stderr, "was: %s\nnow: %s\n", want.dump().c_str(), converted->dump().c_str());
    FUZZ_CHECK(*converted == want);
  }

  model::ObjectStore store;
  store.SetOrigin("fuzz.yaml", parsed.docs);
  const auto first = store.Publish();
  FUZZ_CHECK(first->documents == static_cast<int>(parsed.docs.size()));
  fuzz::CheckSnapshot(*first);
  store.SetOrigin("fuzz.yaml", std::move(parsed.docs));
  const auto second = store.Publish();
  FUZZ_CHECK(fuzz::Objects(*second) == fuzz::Objects(*first));
  FUZZ_CHECK(second->problems.size() == first->problems.size());
  FUZZ_CHECK(second->notices.size() == first->notices.size());
  return 0;
}
