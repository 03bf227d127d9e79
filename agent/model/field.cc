#include "field.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/model/pod.h"

namespace shunt::model {

absl::Status Invalid(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, " ", what));
}

Field Field::operator[](std::string_view key) const {
  std::string path = path_.empty() ? std::string(key) : absl::StrCat(path_, ".", std::string(key));
  if (value_ == nullptr || !value_->is_object()) return Field(nullptr, std::move(path));
  auto it = value_->find(key);
  return Field(it == value_->end() ? nullptr : &*it, std::move(path));
}

Field Field::operator[](size_t i) const {
  std::string path = absl::StrCat(path_, "[", i, "]");
  if (value_ == nullptr || !value_->is_array() || i >= value_->size())
    return Field(nullptr, std::move(path));
  return Field(&(*value_)[i], std::move(path));
}

bool Field::is_integer() const {
  if (value_ == nullptr) return false;
  if (value_->is_number_integer()) return true;
  if (!value_->is_number_float()) return false;
  const double d = value_->get<double>();
  return std::isfinite(d) && std::floor(d) == d;
}

std::string Field::Text() const {
  if (value_ == nullptr) return "?";
  if (value_->is_string()) return value_->get<std::string>();
  if (value_->is_number() || value_->is_boolean()) return value_->dump();
  return "?";
}

absl::StatusOr<std::string> Field::String() const {
  if (absent()) return std::string();
  if (!value_->is_string()) return Invalid(path_, "must be a string");
  return value_->get<std::string>();
}

absl::StatusOr<std::string> Field::RequiredString() const {
  if (absent()) return Invalid(path_, "is missing");
  auto s = String();
  if (s.ok() && s->empty()) return Invalid(path_, "is empty");
  return s;
}

absl::StatusOr<bool> Field::Bool(bool fallback) const {
  if (absent()) return fallback;
  if (!value_->is_boolean()) return Invalid(path_, "must be true or false");
  return value_->get<bool>();
}

bool Field::AsInteger(int64_t& out) const {
  if (value_ == nullptr) return false;
  if (value_->is_number_integer()) {
    if (value_->is_number_unsigned() && value_->get<uint64_t>() > INT64_MAX) return false;
    out = value_->get<int64_t>();
    return true;
  }
  if (is_integer()) {
    const double d = value_->get<double>();
    if (std::fabs(d) > 9e15) return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  return value_->is_string() && absl::SimpleAtoi(value_->get<std::string>(), &out);
}

absl::StatusOr<uint16_t> Field::Port() const {
  int64_t v = 0;
  if (!AsInteger(v) || v < 1 || v > 65535)
    return Invalid(path_, absl::StrCat("'", Text(), "' is not a port (1-65535)"));
  return static_cast<uint16_t>(v);
}

absl::StatusOr<Meta> ReadMeta(const Json& doc, bool service_name) {
  if (!doc.is_object())
    return absl::InvalidArgumentError("not a Kubernetes object (expected a mapping)");
  Field meta = Field::Root(doc)["metadata"];
  if (!meta.is_object()) return absl::InvalidArgumentError("metadata is missing");
  auto name = meta["name"].String();
  if (!name.ok()) return name.status();
  if (name->empty()) return absl::InvalidArgumentError("metadata.name is missing");
  if (service_name && !(IsDnsLabel(*name) && (*name)[0] >= 'a' && (*name)[0] <= 'z'))
    return Invalid("metadata.name", absl::StrCat("'", *name,
                                                 "' is not a valid Service name (a DNS label "
                                                 "starting with a letter)"));
  if (!IsDnsSubdomain(*name))
    return Invalid("metadata.name", absl::StrCat("'", *name, "' is not a valid DNS subdomain"));
  auto ns = meta["namespace"].String();
  if (!ns.ok()) return ns.status();
  Meta m{.namespace_ = ns->empty() ? "default" : *ns, .name = *name, .fields = meta};
  if (!IsDnsLabel(m.namespace_))
    return Invalid("metadata.namespace",
                   absl::StrCat("'", m.namespace_, "' is not a valid DNS label"));
  return m;
}

}  // namespace shunt::model
