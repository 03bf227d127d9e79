#include "namespace.h"

#include "absl/strings/str_cat.h"
#include "agent/model/pod.h"

namespace shunt::model {

absl::StatusOr<bool> ShortCircuitOff(const Field& meta) {
  Field annotations = meta["annotations"];
  if (annotations.absent()) return false;
  if (!annotations.is_object())
    return absl::InvalidArgumentError("metadata.annotations must be a map of strings");
  Field value = annotations[kShortCircuitAnnotation];
  auto text = value.String();
  if (!text.ok()) return text.status();
  if (text->empty() || *text == "on") return false;
  if (*text == "off") return true;
  return absl::InvalidArgumentError(absl::StrCat("metadata.annotations.", kShortCircuitAnnotation,
                                                 " '", *text, "' must be \"on\" or \"off\""));
}

absl::StatusOr<Namespace> ParseNamespace(const nlohmann::json& doc) {
  Field meta = Field::Root(doc)["metadata"];
  if (!meta.is_object()) return absl::InvalidArgumentError("metadata is missing");
  auto name = meta["name"].String();
  if (!name.ok()) return name.status();
  if (!IsDnsLabel(*name))
    return absl::InvalidArgumentError(
        absl::StrCat("metadata.name '", *name, "' is not a valid namespace name"));
  auto off = ShortCircuitOff(meta);
  if (!off.ok()) return off.status();
  return Namespace{.namespace_ = "", .name = *name, .short_circuit_off = *off};
}

}  // namespace shunt::model
