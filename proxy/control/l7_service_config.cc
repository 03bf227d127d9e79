#include "proxy/control/l7_service_config.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "agent/model/smi_json.h"

namespace shunt::proxy {
namespace {

absl::Status Invalid(const std::string& where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("proxy config: ", where, ": ", what));
}

bool IsIpAddressText(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

nlohmann::json SettingsJson(const model::L7Settings& s) {
  return {{"timeout_ms", s.timeout_ms},
          {"retries", s.retries},
          {"retry_budget", s.retry_budget},
          {"retry_on_5xx", s.retry_on_5xx},
          {"retry_on_connect_failure", s.retry_on_connect_failure},
          {"retry_on_reset", s.retry_on_reset},
          {"outlier_consecutive_failures", s.outlier_consecutive_failures},
          {"outlier_ejection_ms", s.outlier_ejection_ms}};
}

nlohmann::json BackendsJson(const std::vector<L7Backend>& backends) {
  nlohmann::json out = nlohmann::json::array();
  for (const L7Backend& b : backends) {
    nlohmann::json eps = nlohmann::json::array();
    for (const L7Endpoint& e : b.endpoints)
      eps.push_back({{"address", e.address}, {"port", e.port}});
    out.push_back({{"service", b.service}, {"weight", b.weight}, {"endpoints", eps}});
  }
  return out;
}

// j[key] as T, checked: a missing key keeps `*out`.
template <typename T>
absl::Status Field(const nlohmann::json& j, const char* key, const std::string& where, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return absl::OkStatus();
  const std::string at = absl::StrCat(where, ".", key);
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) return Invalid(at, "not a boolean");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) return Invalid(at, "not a string");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) return Invalid(at, "not a number");
  } else {
    if (!it->is_number_integer()) return Invalid(at, "not a whole number");
    const int64_t v = it->get<int64_t>();
    if (v < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return Invalid(at, "out of range");
  }
  *out = it->get<T>();
  return absl::OkStatus();
}

absl::StatusOr<model::L7Settings> SettingsFrom(const nlohmann::json& j, const std::string& where) {
  model::L7Settings s;
  if (!j.is_object()) return Invalid(where, "not an object");
  s.enabled = true;
  for (absl::Status st :
       {Field(j, "timeout_ms", where, &s.timeout_ms), Field(j, "retries", where, &s.retries),
        Field(j, "retry_budget", where, &s.retry_budget),
        Field(j, "retry_on_5xx", where, &s.retry_on_5xx),
        Field(j, "retry_on_connect_failure", where, &s.retry_on_connect_failure),
        Field(j, "retry_on_reset", where, &s.retry_on_reset),
        Field(j, "outlier_consecutive_failures", where, &s.outlier_consecutive_failures),
        Field(j, "outlier_ejection_ms", where, &s.outlier_ejection_ms)})
    if (!st.ok()) return st;
  if (s.timeout_ms < 0 || s.retries < 0 || s.retry_budget < 0 ||
      s.outlier_consecutive_failures < 1 || s.outlier_ejection_ms < 0)
    return Invalid(where, "a negative or zero value where none may be");
  return s;
}

absl::Status BackendsFrom(const nlohmann::json& j, const char* key, const std::string& where,
                          std::vector<L7Backend>* out) {
  auto it = j.find(key);
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_array()) return Invalid(absl::StrCat(where, ".", key), "not an array");
  for (size_t i = 0; i < it->size(); ++i) {
    const nlohmann::json& b = (*it)[i];
    const std::string at = absl::StrCat(where, ".", key, "[", i, "]");
    if (!b.is_object()) return Invalid(at, "not an object");
    L7Backend backend;
    if (auto s = Field(b, "service", at, &backend.service); !s.ok()) return s;
    if (auto s = Field(b, "weight", at, &backend.weight); !s.ok()) return s;
    auto eps = b.find("endpoints");
    if (eps != b.end()) {
      if (!eps->is_array()) return Invalid(at + ".endpoints", "not an array");
      for (size_t k = 0; k < eps->size(); ++k) {
        const std::string eat = absl::StrCat(at, ".endpoints[", k, "]");
        if (!(*eps)[k].is_object()) return Invalid(eat, "not an object");
        L7Endpoint e;
        if (auto s = Field((*eps)[k], "address", eat, &e.address); !s.ok()) return s;
        if (auto s = Field((*eps)[k], "port", eat, &e.port); !s.ok()) return s;
        if (!IsIpAddressText(e.address) || e.port == 0)
          return Invalid(eat,
                         absl::StrCat("'", e.address, "' port ", e.port, " is not an endpoint"));
        backend.endpoints.push_back(std::move(e));
      }
    }
    out->push_back(std::move(backend));
  }
  return absl::OkStatus();
}

}  // namespace

nlohmann::json L7ServiceToJson(const L7Service& s) {
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : s.split_groups) groups.push_back(model::HttpRouteGroupToJson(g));
  return {{"service", s.service},
          {"address", s.address},
          {"port", s.port},
          {"settings", SettingsJson(s.settings)},
          {"backends", BackendsJson(s.backends)},
          {"split", s.split},
          {"split_groups", groups},
          {"split_backends", BackendsJson(s.split_backends)},
          {"upstream_http", s.upstream_http}};
}

absl::StatusOr<L7Service> L7ServiceFromJson(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Invalid(where, "not an object");
  L7Service s;
  if (auto st = Field(j, "service", where, &s.service); !st.ok()) return st;
  if (auto st = Field(j, "address", where, &s.address); !st.ok()) return st;
  if (auto st = Field(j, "port", where, &s.port); !st.ok()) return st;
  if (!IsIpAddressText(s.address) || s.port == 0)
    return Invalid(where,
                   absl::StrCat("'", s.address, "' port ", s.port, " is not a service address"));
  if (auto it = j.find("settings"); it != j.end()) {
    auto settings = SettingsFrom(*it, where + ".settings");
    if (!settings.ok()) return settings.status();
    s.settings = *settings;
  }
  if (auto st = BackendsFrom(j, "backends", where, &s.backends); !st.ok()) return st;
  if (auto st = Field(j, "split", where, &s.split); !st.ok()) return st;
  if (auto it = j.find("split_groups"); it != j.end()) {
    if (!it->is_array()) return Invalid(where + ".split_groups", "not an array");
    for (size_t i = 0; i < it->size(); ++i) {
      auto g = model::ParseHttpRouteGroup((*it)[i]);
      if (!g.ok())
        return Invalid(absl::StrCat(where, ".split_groups[", i, "]"), g.status().message());
      s.split_groups.push_back(*std::move(g));
    }
  }
  if (auto st = BackendsFrom(j, "split_backends", where, &s.split_backends); !st.ok()) return st;
  if (j.contains("upstream_http")) {
    if (auto st = Field(j, "upstream_http", where, &s.upstream_http); !st.ok()) return st;
    if (!s.upstream_http.empty() && s.upstream_http != "h2c" && s.upstream_http != "http1")
      return Invalid(where + ".upstream_http",
                     absl::StrCat("'", s.upstream_http, "' (want h2c, http1 or empty)"));
  }
  return s;
}

std::string HttpVersionOf(absl::string_view app_protocol) {
  if (app_protocol == "kubernetes.io/h2c" || app_protocol == "h2c" || app_protocol == "http2" ||
      app_protocol == "grpc")
    return "h2c";
  if (app_protocol == "http" || app_protocol == "kubernetes.io/ws") return "http1";
  return "";
}

}  // namespace shunt::proxy
