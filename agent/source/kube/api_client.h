// HTTPS requests to the API server, through libcurl with OpenSSL (TLS,
// chunked bodies, keep-alive and proxies are libcurl's, not ours). One
// client per thread: it keeps its connection open between requests; the
// token source is shared.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "agent/source/kube/kube_config.h"

namespace shunt::source::kube {

struct ApiResponse {
  long status = 0;         // HTTP status
  std::string body;        // whole body for Get(); empty for Stream()
  int retry_after_s = -1;  // Retry-After in seconds, -1 when absent
};

class ApiClient {
 public:
  // InvalidArgument for a server URL libcurl cannot use.
  static absl::StatusOr<std::unique_ptr<ApiClient>> Create(const KubeConfig& config,
                                                           std::shared_ptr<TokenSource> tokens);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // GET server + `path` ("/api/v1/pods?limit=500"). The error (Unavailable,
  // or FailedPrecondition for a certificate the configured CA does not
  // trust) names the server; an HTTP error status is a response, not an
  // error. A 401 makes the token source read its file again.
  absl::StatusOr<ApiResponse> Get(const std::string& path, const std::atomic<bool>& stop);
  // The same, handing the body to `on_data` as it arrives (a watch). Ends
  // when the body ends, when `on_data` returns false, when `stop` is set
  // (checked at least once a second) or after `max_seconds`; Cancelled for
  // the last two of those.
  absl::StatusOr<ApiResponse> Stream(const std::string& path,
                                     const std::function<bool(std::string_view)>& on_data,
                                     const std::atomic<bool>& stop, int max_seconds);

  const std::string& server() const { return config_.server; }

 private:
  ApiClient(KubeConfig config, std::shared_ptr<TokenSource> tokens)
      : config_(std::move(config)), tokens_(std::move(tokens)) {}
  absl::StatusOr<ApiResponse> Perform(const std::string& path,
                                      const std::function<bool(std::string_view)>* on_data,
                                      const std::atomic<bool>& stop, int max_seconds);

  KubeConfig config_;
  std::shared_ptr<TokenSource> tokens_;
  std::string url_base_;    // scheme://host:port as requested (tls-server-name applied)
  std::string connect_to_;  // CURLOPT_CONNECT_TO entry, when tls-server-name is set
  void* curl_ = nullptr;    // CURL*, kept for connection reuse
};

}  // namespace shunt::source::kube
