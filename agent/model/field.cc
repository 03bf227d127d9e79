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

std::optional<int64_t> ParseRfc3339(const std::string& s) {
  auto IsDigit = [](char c) { return c >= '0' && c <= '9'; };
  auto digits = [&](size_t at, size_t n, int& out) {
    if (at + n > s.size()) return false;
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (!IsDigit(s[i])) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(0, 4, y) || s.size() < 20 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
      !digits(8, 2, d) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, h) || s[13] != ':' ||
      !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, sec))
    return std::nullopt;
  size_t i = 19;
  if (s[i] == '.') {
    const size_t start = ++i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return std::nullopt;
  }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = 0, om = 0;
    if (!digits(i + 1, 2, oh) || !digits(i + 4, 2, om) || oh > 23 || om > 59) return std::nullopt;
    offset = (s[i] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year{y},
                                        std::chrono::month{static_cast<unsigned>(mo)},
                                        std::chrono::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  return days * 86400 + h * 3600 + mi * 60 + sec - offset;
}

}  // namespace shunt::model
