// Pieces of the Prometheus text exposition (format 0.0.4) that every
// controller writing /metrics shares.
#pragma once

#include <string>
#include <string_view>

namespace shunt::lib {

// A label value: backslash, double quote and newline escaped.
inline std::string PrometheusLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace shunt::lib
