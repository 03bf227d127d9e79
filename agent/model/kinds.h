// The one table of the kinds this version reads: which apiVersions each
// accepts, how it parses, and where its objects go in a snapshot. The
// object store drives everything through it, so adding a kind is one row.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/model/objects.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

using Object = std::variant<Pod, TrafficTarget, PortRoute, HttpRouteGroup, Service, EndpointSlice,
                            TrafficSplit, Namespace>;

struct KindSpec {
  std::string_view kind;                   // "TrafficTarget"
  std::vector<std::string_view> versions;  // accepted apiVersions, newest first
  // Core kinds (v1 Pod, Service): another apiVersion is some other kind of
  // the same name, which is not handled (a notice), rather than a version
  // we cannot read (a problem).
  bool core = false;
  // InvalidArgument naming the field, or Unimplemented for a valid object
  // this version does not handle (a notice).
  absl::StatusOr<Object> (*parse)(const nlohmann::json& doc, const std::string& api_version);
  // Appends the object to its list.
  void (*add)(const Object& object, Objects& out);
};

// The table, in the order problems about duplicates are reported.
const std::vector<KindSpec>& Kinds();
// nullptr when this version does not handle the kind.
const KindSpec* FindKind(std::string_view kind);
// "access.smi-spec.io/v1alpha3 or v1alpha2"
std::string WantedVersions(const KindSpec& spec);

}  // namespace shunt::model
