// The fake kube-apiserver (test/kubeapi/fake_apiserver.py) as a C++ test
// sees it: started in a directory of its own, driven through its /fake
// control API, stopped by pid and its directory removed when it goes.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::kubeapi {

class FakeApiServer {
 public:
  // `flags`: more of fake_apiserver.py's flags ("--no-watchlist", ...).
  // `netns`: a network namespace (path) to run it in, so that an agent in
  // that namespace reaches it on 127.0.0.1; the control calls below enter
  // it too.
  static absl::StatusOr<std::unique_ptr<FakeApiServer>> Start(
      const std::vector<std::string>& flags = {}, const std::string& netns = "");
  ~FakeApiServer();

  const std::string& url() const { return url_; }  // https://127.0.0.1:PORT
  const std::string& dir() const { return dir_; }
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }
  // Writes DIR/`name`, a kubeconfig whose user reads DIR/token (as a
  // projected service account token is read) and trusts DIR/`ca_file`;
  // `server` defaults to url(). Returns its path.
  std::string WriteKubeconfig(const std::string& name, const std::string& ca_file = "ca.crt",
                              const std::string& server = "",
                              const std::string& tls_server_name = "") const;
  pid_t pid() const { return pid_; }

  absl::StatusOr<nlohmann::json> Apply(const nlohmann::json& object);
  absl::StatusOr<nlohmann::json> Bulk(const nlohmann::json& objects);
  absl::Status Delete(const std::string& api_version, const std::string& kind,
                      const std::string& namespace_, const std::string& name);
  absl::StatusOr<nlohmann::json> Fault(const nlohmann::json& fault);
  // Every API request so far (not /fake ones).
  absl::StatusOr<nlohmann::json> Requests();
  absl::Status ClearRequests();
  absl::StatusOr<nlohmann::json> State();

  // POST/GET to the server with its current token; the JSON answer, or an
  // error with the status and body when it is not 200.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const nlohmann::json* body = nullptr);

 private:
  FakeApiServer() = default;
  absl::StatusOr<nlohmann::json> CallHere(const std::string& method, const std::string& path,
                                          const nlohmann::json* body);
  std::string dir_, url_, token_, netns_;
  pid_t pid_ = -1;
};

// A pod as the API server stores it (enough for the mesh): name, namespace,
// uid, node, service account and IP.
nlohmann::json PodObject(const std::string& namespace_, const std::string& name,
                         const std::string& node, const std::string& ip,
                         const std::string& service_account = "default",
                         const std::string& uid = "");

}  // namespace shunt::kubeapi
