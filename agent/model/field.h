// Reading Kubernetes objects: a read-only view of one field of a document
// (the JSON the API server speaks; the file source converts YAML to it at
// its border), which knows its own path so that every error names the
// field ("spec.ports[1].port '0' is not a port (1-65535)"), and the
// metadata rules every kind shares. The parsers in this folder are built
// on it, so each rule lives once.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::model {

using Json = nlohmann::json;

// RFC 3339 ("2024-01-01T00:00:00Z", fractions and offsets allowed) ->
// seconds since the epoch; nullopt when it is not one.
std::optional<int64_t> ParseRfc3339(const std::string& s);

// InvalidArgument "<path> <what>".
absl::Status Invalid(const std::string& path, const std::string& what);

class Field {
 public:
  // The whole document; its fields' paths start at the top ("spec.ports").
  static Field Root(const Json& doc) { return Field(&doc, ""); }
  // A field with a path of the caller's choosing
  // ("metadata.labels[kubernetes.io/service-name]").
  Field(const Json* value, std::string path) : value_(value), path_(std::move(path)) {}

  // A member of an object; absent when this is not an object or lacks it.
  Field operator[](std::string_view key) const;
  // An element of an array; absent when out of range.
  Field operator[](size_t i) const;

  const std::string& path() const { return path_; }
  // Missing, or an explicit null: Kubernetes treats both as "not set".
  bool absent() const { return value_ == nullptr || value_->is_null(); }
  bool is_object() const { return value_ != nullptr && value_->is_object(); }
  bool is_array() const { return value_ != nullptr && value_->is_array(); }
  bool is_string() const { return value_ != nullptr && value_->is_string(); }
  bool is_bool() const { return value_ != nullptr && value_->is_boolean(); }
  // An integer, or a float with no fractional part (JSON does not tell them apart).
  bool is_integer() const;
  // Elements of an array, members of an object, 0 otherwise.
  size_t size() const { return value_ == nullptr ? 0 : value_->size(); }
  const Json* json() const { return value_; }

  // The value as a user wrote it, for messages: a string as is, a number
  // or bool as JSON, "?" for anything else.
  std::string Text() const;

  // Strings: InvalidArgument "<path> must be a string" for any other type.
  absl::StatusOr<std::string> String() const;          // absent: ""
  absl::StatusOr<std::string> RequiredString() const;  // absent: "is missing"; "": "is empty"

  // true/false; `fallback` when absent. InvalidArgument "must be true or false".
  absl::StatusOr<bool> Bool(bool fallback) const;

  // A port number 1-65535: an integer, or a string of digits (as manifests
  // written by hand sometimes quote it). Absent is an error here: callers
  // decide whether a port may be missing.
  absl::StatusOr<uint16_t> Port() const;

  // An integer, or a string of digits; nullopt-like failure for anything else.
  bool AsInteger(int64_t& out) const;

 private:
  const Json* value_;
  std::string path_;
};

// metadata.name and metadata.namespace ("default" when absent), checked
// against the Kubernetes name rules (pod.h). `service_name` applies the
// stricter DNS-1035 rule that Service names follow.
struct Meta {
  std::string namespace_;
  std::string name;
  Field fields;  // metadata itself, for kind-specific fields
};
absl::StatusOr<Meta> ReadMeta(const Json& doc, bool service_name = false);

}  // namespace shunt::model
