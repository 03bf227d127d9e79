#include "router.h"

#include "absl/strings/str_split.h"
#include "agent/lib/json_text.h"

namespace shunt::http {

void Router::Add(std::string method, std::string path, Handler handler, RunsOn runs_on) {
  exact_.push_back({std::move(method), std::move(path), std::move(handler), runs_on});
}

void Router::AddPrefix(std::string method, std::string prefix, Handler handler, RunsOn runs_on) {
  prefixes_.push_back({std::move(method), std::move(prefix), std::move(handler), runs_on});
}

const Route* Router::Find(const std::string& method, const std::string& path,
                          bool* path_known) const {
  *path_known = false;
  for (const Route& r : exact_) {
    if (r.path != path) continue;
    *path_known = true;
    if (r.method == method) return &r;
  }
  for (const Route& r : prefixes_) {
    if (path.rfind(r.path, 0) != 0) continue;
    *path_known = true;
    if (r.method == method) return &r;
  }
  return nullptr;
}

std::vector<std::string> Router::Paths() const {
  std::vector<std::string> out;
  for (const Route& r : exact_) out.push_back(r.path);
  for (const Route& r : prefixes_) out.push_back(r.path + "...");
  return out;
}

Response Json(const nlohmann::json& body, int status) {
  return {status, "application/json", body.dump(-1, ' ', false, lib::kUtf8Replace)};
}

Response Error(int status, const std::string& message) {
  return Json(nlohmann::json{{"error", message}}, status);
}

Response Text(int status, std::string body) {
  return {status, "text/plain; charset=utf-8", std::move(body)};
}

std::string PercentDecode(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string PercentEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(const std::string& query) {
  std::map<std::string, std::string> out;
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = part.find('=');
    const std::string key(part.substr(0, eq));
    const std::string value(eq == absl::string_view::npos ? "" : part.substr(eq + 1));
    out[PercentDecode(key)] = PercentDecode(value);
  }
  return out;
}

}  // namespace shunt::http
