#include "kube_config.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "agent/source/yaml_json.h"

extern char** environ;

namespace shunt::source::kube {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// One named entry of a kubeconfig list (clusters, contexts, users): its
// inner mapping (`cluster`, `context`, `user`).
absl::StatusOr<nlohmann::json> Named(const nlohmann::json& root, const std::string& list,
                                     const std::string& inner, const std::string& name,
                                     const std::string& where) {
  auto it = root.find(list);
  if (it != root.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (!e.is_object() || e.value("name", nlohmann::json()) != name) continue;
      auto in = e.find(inner);
      if (in == e.end() || !in->is_object())
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", list, " '", name, "' has no ", inner, " mapping"));
      return *in;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ": no ", list, " entry named '", name, "'"));
}

std::string Str(const nlohmann::json& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->is_string() ? it->get<std::string>() : "";
}

// `file` relative to the kubeconfig's directory, as kubectl resolves it.
std::string Resolve(const std::string& dir, const std::string& file) {
  if (file.empty() || file[0] == '/') return file;
  return absl::StrCat(dir, "/", file);
}

// PEM from `<key>-data` (base64) or the file `<key>`.
absl::Status LoadPem(const nlohmann::json& m, const std::string& key, const std::string& dir,
                     const std::string& where, std::string& pem, std::string* from) {
  const std::string data = Str(m, (key + "-data").c_str());
  const std::string file = Str(m, key.c_str());
  if (!data.empty()) {
    if (!absl::Base64Unescape(data, &pem))
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", key, "-data is not base64"));
    if (from != nullptr) *from = absl::StrCat(where, " ", key, "-data");
  } else if (!file.empty()) {
    auto text = ReadWhole(Resolve(dir, file), absl::StrCat(where, ": ", key));
    if (!text.ok()) return text.status();
    pem = *std::move(text);
    if (from != nullptr) *from = Resolve(dir, file);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path) {
  auto text = ReadWhole(path, "kubeconfig");
  if (!text.ok()) return text.status();
  nlohmann::json root;
  try {
    auto j = YamlToJson(YAML::Load(*text));
    if (!j.ok())
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path, ": ", j.status().message()));
    root = *std::move(j);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": ", e.what()));
  }
  if (!root.is_object())
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": not a mapping"));
  const std::string dir =
      path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  const std::string context_name = Str(root, "current-context");
  if (context_name.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, ": current-context is not set"));
  const std::string where = absl::StrCat("kubeconfig ", path, " context ", context_name);
  auto context = Named(root, "contexts", "context", context_name, where);
  if (!context.ok()) return context.status();
  KubeConfig c{.where = where};
  c.namespace_ = Str(*context, "namespace");
  if (c.namespace_.empty()) c.namespace_ = "default";

  auto cluster = Named(root, "clusters", "cluster", Str(*context, "cluster"), where);
  if (!cluster.ok()) return cluster.status();
  c.server = Str(*cluster, "server");
  if (c.server.rfind("https://", 0) != 0 && c.server.rfind("http://", 0) != 0)
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": cluster server '", c.server, "' is not an http(s) URL"));
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (auto it = cluster->find("insecure-skip-tls-verify"); it != cluster->end() && it->is_boolean())
    c.insecure_skip_tls_verify = it->get<bool>();
  c.tls_server_name = Str(*cluster, "tls-server-name");
  if (auto s = LoadPem(*cluster, "certificate-authority", dir, where, c.ca_pem, &c.ca_where);
      !s.ok())
    return s;
  if (c.ca_where.empty()) c.ca_where = "the system's trusted CAs";

  const std::string user_name = Str(*context, "user");
  if (!user_name.empty()) {
    auto user = Named(root, "users", "user", user_name, where);
    if (!user.ok()) return user.status();
    // Plugins run programs we do not ship; say so rather than connect
    // without credentials.
    for (const char* plugin : {"exec", "auth-provider"})
      if (user->contains(plugin))
        return absl::UnimplementedError(absl::StrCat(
            where, ": user '", user_name, "' uses an ", plugin,
            " plugin, which shunt does not run; use a token, tokenFile or client certificate"));
    c.token = Str(*user, "token");
    if (c.token.empty()) c.token_file = Resolve(dir, Str(*user, "tokenFile"));
    if (auto s = LoadPem(*user, "client-certificate", dir, where, c.client_cert_pem, nullptr);
        !s.ok())
      return s;
    if (auto s = LoadPem(*user, "client-key", dir, where, c.client_key_pem, nullptr); !s.ok())
      return s;
    if (c.client_cert_pem.empty() != c.client_key_pem.empty())
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": user '", user_name, "' needs both client-certificate and client-key"));
  }
  return c;
}

absl::StatusOr<KubeConfig> InClusterConfig(const std::map<std::string, std::string>& env,
                                           const std::string& secrets_dir) {
  auto host = env.find("KUBERNETES_SERVICE_HOST");
  auto port = env.find("KUBERNETES_SERVICE_PORT");
  if (host == env.end() || port == env.end() || host->second.empty() || port->second.empty())
    return absl::FailedPreconditionError(
        "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a "
        "pod?); pass --kubeconfig");
  KubeConfig c{.where = "in-cluster service account"};
  const bool v6 = host->second.find(':') != std::string::npos;
  c.server =
      absl::StrCat("https://", v6 ? "[" : "", host->second, v6 ? "]" : "", ":", port->second);
  c.token_file = secrets_dir + "/token";
  if (access(c.token_file.c_str(), R_OK) != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("in-cluster: cannot read the service account token ", c.token_file));
  auto ca = ReadWhole(secrets_dir + "/ca.crt", "in-cluster");
  if (!ca.ok()) return ca.status();
  c.ca_pem = *std::move(ca);
  c.ca_where = secrets_dir + "/ca.crt";
  auto ns = ReadWhole(secrets_dir + "/namespace", "in-cluster");
  c.namespace_ = ns.ok() ? Trim(*ns) : "default";
  return c;
}

std::map<std::string, std::string> ProcessEnv() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string kv(*e);
    const size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return env;
}

TokenSource::TokenSource(const KubeConfig& config, const lib::Clock& clock)
    : fixed_(config.token), file_(config.token_file), clock_(clock) {}

absl::StatusOr<std::string> TokenSource::Token() {
  if (!fixed_.empty() || file_.empty()) return fixed_;
  std::lock_guard lock(mu_);
  const int64_t now = clock_.MonotonicMs();
  if (read_at_ms_ >= 0 && now - read_at_ms_ < 60'000) return cached_;
  auto text = ReadWhole(file_, "token");
  if (!text.ok()) {
    // A rotation that is being written: the last token may still be good.
    if (!cached_.empty()) return cached_;
    return text.status();
  }
  cached_ = Trim(*text);
  read_at_ms_ = now;
  return cached_;
}

void TokenSource::Invalidate() {
  std::lock_guard lock(mu_);
  read_at_ms_ = -1;
}

}  // namespace shunt::source::kube
