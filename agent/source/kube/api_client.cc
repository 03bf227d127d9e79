#include "api_client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shunt::source::kube {
namespace {

struct Transfer {
  CURL* curl = nullptr;
  const std::function<bool(std::string_view)>* on_data = nullptr;
  std::string* body = nullptr;
  const std::atomic<bool>* stop = nullptr;
  bool stopped_by_reader = false;
  int retry_after_s = -1;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  // Only a 200 body is a stream of events; an error's Status is kept whole
  // (up to a limit) for its message.
  if (t->on_data != nullptr && status == 200) {
    if (!(*t->on_data)(std::string_view(data, len))) {
      t->stopped_by_reader = true;
      return 0;  // makes libcurl end the transfer with CURLE_WRITE_ERROR
    }
  } else if (t->body->size() < (t->on_data != nullptr ? 65536u : 1u << 30)) {
    t->body->append(data, len);
  }
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * n);
  if (absl::StartsWithIgnoreCase(line, "retry-after:")) {
    const std::string value(absl::StripAsciiWhitespace(line.substr(12)));
    int seconds = 0;
    // The API server sends seconds; an HTTP date is read as "soon".
    t->retry_after_s = absl::SimpleAtoi(value, &seconds) && seconds >= 0 ? seconds : 1;
  }
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  return t->stop->load() ? 1 : 0;  // non-zero aborts with CURLE_ABORTED_BY_CALLBACK
}

void SetBlob(CURL* c, CURLoption option, const std::string& pem) {
  curl_blob blob{.data = const_cast<char*>(pem.data()), .len = pem.size(), .flags = CURL_BLOB_COPY};
  curl_easy_setopt(c, option, &blob);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(const KubeConfig& config,
                                                             std::shared_ptr<TokenSource> tokens) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<ApiClient> c(new ApiClient(config, std::move(tokens)));
  CURLU* url = curl_url();
  char *scheme = nullptr, *host = nullptr, *port = nullptr;
  const bool ok = curl_url_set(url, CURLUPART_URL, config.server.c_str(), 0) == CURLUE_OK &&
                  curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
                  curl_url_get(url, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
                  curl_url_get(url, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK;
  if (ok) {
    // A tls-server-name is the name the certificate must carry (and the SNI
    // sent): ask for that name and have libcurl connect to the real address.
    const std::string name = config.tls_server_name.empty() ? host : config.tls_server_name;
    c->url_base_ = absl::StrCat(scheme, "://", name, ":", port);
    if (!config.tls_server_name.empty())
      c->connect_to_ = absl::StrCat(name, ":", port, ":", host, ":", port);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(url);
  if (!ok)
    return absl::InvalidArgumentError(
        absl::StrCat("kube: server URL '", config.server, "' (", config.where, ") is not usable"));
  c->curl_ = curl_easy_init();
  if (c->curl_ == nullptr) return absl::ResourceExhaustedError("kube: curl_easy_init failed");
  return c;
}

ApiClient::~ApiClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

absl::StatusOr<ApiResponse> ApiClient::Get(const std::string& path, const std::atomic<bool>& stop) {
  return Perform(path, nullptr, stop, 60);
}

absl::StatusOr<ApiResponse> ApiClient::Stream(const std::string& path,
                                              const std::function<bool(std::string_view)>& on_data,
                                              const std::atomic<bool>& stop, int max_seconds) {
  return Perform(path, &on_data, stop, max_seconds);
}

absl::StatusOr<ApiResponse> ApiClient::Perform(const std::string& path,
                                               const std::function<bool(std::string_view)>* on_data,
                                               const std::atomic<bool>& stop, int max_seconds) {
  auto token = tokens_->Token();
  if (!token.ok()) return token.status();
  CURL* c = static_cast<CURL*>(curl_);
  curl_easy_reset(c);  // keeps the open connection and TLS session
  ApiResponse response;
  Transfer t{.curl = c, .on_data = on_data, .body = &response.body, .stop = &stop};
  const std::string url = url_base_ + path;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(max_seconds));
  // A watch may be silent for minutes; keepalive finds a dead peer.
  curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, config_.insecure_skip_tls_verify ? 0L : 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, config_.insecure_skip_tls_verify ? 0L : 2L);
  if (!config_.ca_pem.empty()) SetBlob(c, CURLOPT_CAINFO_BLOB, config_.ca_pem);
  if (!config_.client_cert_pem.empty()) {
    SetBlob(c, CURLOPT_SSLCERT_BLOB, config_.client_cert_pem);
    curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
    SetBlob(c, CURLOPT_SSLKEY_BLOB, config_.client_key_pem);
    curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_slist* connect_to = nullptr;
  if (!connect_to_.empty()) {
    connect_to = curl_slist_append(nullptr, connect_to_.c_str());
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
  }
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  headers = curl_slist_append(headers, "User-Agent: shunt-agent");
  if (!token->empty())
    headers = curl_slist_append(headers, absl::StrCat("Authorization: Bearer ", *token).c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);

  const CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  curl_slist_free_all(headers);
  curl_slist_free_all(connect_to);
  response.retry_after_s = t.retry_after_s;
  if (response.status == 401) tokens_->Invalidate();
  if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.stopped_by_reader)) return response;
  const std::string what =
      absl::StrCat("kube: GET ", config_.server, path.substr(0, path.find('?')));
  const std::string detail = error[0] != '\0' ? error : curl_easy_strerror(rc);
  if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError(absl::StrCat(what, ": stopped"));
  if (rc == CURLE_OPERATION_TIMEDOUT && response.status == 200 && on_data != nullptr)
    return absl::CancelledError(absl::StrCat(what, ": ended after ", max_seconds, " s"));
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
    return absl::FailedPreconditionError(
        absl::StrCat("kube: the API server ", config_.server, " presented a certificate that ",
                     config_.ca_where, " does not vouch for (", detail, ")"));
  if (rc == CURLE_SSL_CERTPROBLEM)
    return absl::FailedPreconditionError(absl::StrCat(
        "kube: the client certificate of ", config_.where, " is not usable (", detail, ")"));
  return absl::UnavailableError(absl::StrCat(what, ": ", detail));
}

}  // namespace shunt::source::kube
