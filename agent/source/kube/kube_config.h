// Where the API server is and how to prove who we are: from a kubeconfig
// file (--kubeconfig) or from the pod's service account (in-cluster).
// KUBE-API.md "Credentials" lists the fields; exec and auth-provider
// plugins are refused by name, not ignored.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "agent/lib/clock.h"

namespace shunt::source::kube {

struct KubeConfig {
  std::string server;    // "https://10.96.0.1:443"
  std::string ca_pem;    // trusted CA(s), PEM; empty: the system's store
  std::string ca_where;  // where ca_pem came from, for errors
  bool insecure_skip_tls_verify = false;
  std::string tls_server_name;  // verify the server's certificate against this name
  std::string client_cert_pem, client_key_pem;
  std::string token;       // a fixed bearer token
  std::string token_file;  // read again every minute and after a 401
  std::string namespace_;  // the context's (or the service account's) namespace
  std::string where;       // "kubeconfig /root/.kube/config context kind" / "in-cluster"
};

// current-context of the kubeconfig at `path`. Relative file paths in it
// are relative to the file's directory, as kubectl reads them.
// InvalidArgument naming the file and field for what is missing or wrong.
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path);

// In a pod: KUBERNETES_SERVICE_HOST/PORT from `env` and token, ca.crt,
// namespace under `secrets_dir`. FailedPrecondition when not in a pod.
absl::StatusOr<KubeConfig> InClusterConfig(
    const std::map<std::string, std::string>& env,
    const std::string& secrets_dir = "/var/run/secrets/kubernetes.io/serviceaccount");
// The process's environment, for InClusterConfig.
std::map<std::string, std::string> ProcessEnv();

// The bearer token of a config, re-read from token_file at most once a
// minute and at once after Invalidate() (a 401). Thread-safe: every watch
// thread asks it.
class TokenSource {
 public:
  TokenSource(const KubeConfig& config, const lib::Clock& clock);
  // "" when the config has no token (client certificates). An error when the
  // token file cannot be read and no earlier token is known.
  absl::StatusOr<std::string> Token();
  // The server said 401: read the file again at the next Token().
  void Invalidate();

 private:
  std::mutex mu_;
  const std::string fixed_, file_;
  const lib::Clock& clock_;
  std::string cached_;
  int64_t read_at_ms_ = -1;  // -1: never read (or invalidated)
};

}  // namespace shunt::source::kube
