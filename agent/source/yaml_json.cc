#include "yaml_json.h"

#include <cmath>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"

namespace shunt::source {
namespace {

constexpr int kMaxDepth = 100;
// Aliases can make a small file expand into a huge document ("billion
// laughs"); no manifest has anywhere near this many values.
constexpr size_t kMaxNodes = 1'000'000;

absl::Status Invalid(const YAML::Node& n, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", n.Mark().line + 1, ": ", what));
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += len;
  }
  return true;
}

// Resolution of a plain scalar: YAML 1.2's core schema, plus YAML 1.1's
// yes/no/on/off.
nlohmann::json ResolvePlain(const std::string& s) {
  static const RE2 kInt("[-+]?[0-9]+");
  static const RE2 kOct("0o([0-7]+)");
  static const RE2 kHex("0x([0-9a-fA-F]+)");
  static const RE2 kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const RE2 kInf("([-+]?)\\.(inf|Inf|INF)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // YAML 1.1's words, which kubectl's parser still reads as booleans; not
  // its y and n, which are far more often names than answers.
  if (s == "yes" || s == "Yes" || s == "YES" || s == "on" || s == "On" || s == "ON") return true;
  if (s == "no" || s == "No" || s == "NO" || s == "off" || s == "Off" || s == "OFF") return false;
  if (RE2::FullMatch(s, kInt)) {
    int64_t i = 0;
    if (absl::SimpleAtoi(s, &i)) return i;
    uint64_t u = 0;
    if (absl::SimpleAtoi(s, &u)) return u;
    double d = 0;
    if (absl::SimpleAtod(s, &d)) return d;
    return s;
  }
  std::string digits;
  if (RE2::FullMatch(s, kOct, &digits)) {
    uint64_t v = 0;
    for (char c : digits) {
      if (v > (std::numeric_limits<uint64_t>::max() >> 3)) return s;
      v = v * 8 + static_cast<uint64_t>(c - '0');
    }
    return v;
  }
  if (RE2::FullMatch(s, kHex, &digits)) {
    uint64_t v = 0;
    if (digits.size() <= 16 && absl::SimpleHexAtoi(digits, &v)) return v;
    return s;
  }
  std::string sign, word;
  if (RE2::FullMatch(s, kInf, &sign, &word))
    return sign == "-" ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  if (RE2::FullMatch(s, kFloat)) {
    double d = 0;
    if (absl::SimpleAtod(s, &d)) return d;
  }
  return s;
}

absl::StatusOr<nlohmann::json> Scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (!ValidUtf8(s)) return Invalid(n, "a value is not valid UTF-8");
  const std::string& tag = n.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return nlohmann::json(s);  // quoted
  nlohmann::json v = ResolvePlain(s);
  if (tag == "?" || tag.empty()) return v;
  // An explicit tag asks for a type: honour it or say it does not fit.
  auto want = [&](bool ok, const char* type) -> absl::StatusOr<nlohmann::json> {
    if (!ok) return Invalid(n, absl::StrCat("'", s, "' is not a valid ", type));
    return v;
  };
  if (tag == "tag:yaml.org,2002:int") return want(v.is_number_integer(), "!!int");
  if (tag == "tag:yaml.org,2002:float") return want(v.is_number(), "!!float");
  if (tag == "tag:yaml.org,2002:bool") return want(v.is_boolean(), "!!bool");
  if (tag == "tag:yaml.org,2002:null") return want(v.is_null(), "!!null");
  return nlohmann::json(s);  // an application tag: the text as written
}

absl::StatusOr<nlohmann::json> Convert(const YAML::Node& n, int depth, size_t& nodes) {
  if (++nodes > kMaxNodes)
    return Invalid(n, absl::StrCat("more than ", kMaxNodes, " values (aliases expanding?)"));
  if (depth > kMaxDepth)
    return Invalid(n, absl::StrCat("nested deeper than ", kMaxDepth, " levels"));
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(n);
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const YAML::Node& item : n) {
        auto v = Convert(item, depth + 1, nodes);
        if (!v.ok()) return v.status();
        out.push_back(*std::move(v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar()) return Invalid(kv.first, "a mapping key is not a string");
        const std::string& key = kv.first.Scalar();
        if (!ValidUtf8(key)) return Invalid(kv.first, "a key is not valid UTF-8");
        if (out.contains(key))
          return Invalid(kv.first, absl::StrCat("key '", key, "' is given twice"));
        auto v = Convert(kv.second, depth + 1, nodes);
        if (!v.ok()) return v.status();
        out[key] = *std::move(v);
      }
      return out;
    }
  }
  return Invalid(n, "unknown YAML node type");
}

}  // namespace

absl::StatusOr<nlohmann::json> YamlToJson(const YAML::Node& node) {
  size_t nodes = 0;
  return Convert(node, 0, nodes);
}

}  // namespace shunt::source
