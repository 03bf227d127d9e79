#include "proxy/server/span_exporter.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <chrono>
#include <type_traits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace shunt::proxy {
namespace {

// OTLP's JSON mapping writes 64-bit integers as decimal strings.
std::string U64(int64_t v) { return std::to_string(v); }

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

absl::StatusOr<std::string> SpanExporter::TracesUrl(const std::string& endpoint) {
  std::string rest;
  if (absl::StartsWith(endpoint, "http://")) {
    rest = endpoint.substr(7);
  } else if (absl::StartsWith(endpoint, "https://")) {
    rest = endpoint.substr(8);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--trace-otlp-endpoint: '", endpoint,
        "' is not an http:// or https:// URL (OTLP/HTTP, e.g. http://otel-collector:4318)"));
  }
  const size_t slash = rest.find('/');
  if (rest.empty() || slash == 0)
    return absl::InvalidArgumentError(
        absl::StrCat("--trace-otlp-endpoint: '", endpoint, "' names no host"));
  // A base URL gets the traces path, as OTEL_EXPORTER_OTLP_ENDPOINT does.
  if (slash == std::string::npos) return endpoint + "/v1/traces";
  if (slash == rest.size() - 1) return endpoint + "v1/traces";
  return endpoint;
}

// The libcurl calls the exporter makes, looked up once in libcurl.so.4
// (linked, libcurl would be mapped with gnutls, krb5, ldap, ssh2... and
// their constructors run in every proxy, exporting or not).
struct SpanExporter::Curl {
  CURLcode (*global_init)(long);
  CURL* (*easy_init)();
  curl_slist* (*slist_append)(curl_slist*, const char*);
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...);
  CURLcode (*easy_perform)(CURL*);
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...);
  void (*slist_free_all)(curl_slist*);
  void (*easy_cleanup)(CURL*);
  const char* (*easy_strerror)(CURLcode);
};

namespace {

absl::StatusOr<const SpanExporter::Curl*> LoadCurl() {
  static const absl::StatusOr<const SpanExporter::Curl*> curl =
      []() -> absl::StatusOr<const SpanExporter::Curl*> {
    void* lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      return absl::FailedPreconditionError(absl::StrCat(
          "--trace-otlp-endpoint: span export needs libcurl (libcurl.so.4): ", dlerror()));
    auto* c = new SpanExporter::Curl;  // for the process's life, as the library
    std::string missing;
    auto find = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(lib, name));
      if (!*fn) absl::StrAppend(&missing, missing.empty() ? "" : ", ", name);
    };
    find(&c->global_init, "curl_global_init");
    find(&c->easy_init, "curl_easy_init");
    find(&c->slist_append, "curl_slist_append");
    find(&c->easy_setopt, "curl_easy_setopt");
    find(&c->easy_perform, "curl_easy_perform");
    find(&c->easy_getinfo, "curl_easy_getinfo");
    find(&c->slist_free_all, "curl_slist_free_all");
    find(&c->easy_cleanup, "curl_easy_cleanup");
    find(&c->easy_strerror, "curl_easy_strerror");
    if (!missing.empty())
      return absl::FailedPreconditionError(
          absl::StrCat("--trace-otlp-endpoint: libcurl.so.4 lacks ", missing));
    if (c->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
      return absl::InternalError("--trace-otlp-endpoint: curl_global_init failed");
    return c;
  }();
  return curl;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpanExporter>> SpanExporter::Start(std::string traces_url,
                                                                  std::string node) {
  auto curl = LoadCurl();
  if (!curl.ok()) return curl.status();
  return std::unique_ptr<SpanExporter>(
      new SpanExporter(*curl, std::move(traces_url), std::move(node)));
}

SpanExporter::SpanExporter(const Curl* curl, std::string traces_url, std::string node)
    : curl_(curl), url_(std::move(traces_url)), node_(std::move(node)) {
  thread_ = std::thread([this] { Run(); });
}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void SpanExporter::Add(ExportedSpan span) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(span));
    if (queue_.size() < kBatch) return;
  }
  wake_.notify_one();
}

void SpanExporter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait_for(lock, std::chrono::seconds(1),
                   [this] { return stopping_ || queue_.size() >= kBatch; });
    const bool last = stopping_;
    while (!queue_.empty()) {
      std::vector<ExportedSpan> batch;
      while (!queue_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      std::string error;
      if (Post(Body(batch, node_).dump(), &error)) {
        exported_.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        // Not sent again: a collector that is down must not make the
        // proxy hold spans (the next batch tries afresh).
        failed_posts_.fetch_add(1, std::memory_order_relaxed);
        dropped_.fetch_add(batch.size(), std::memory_order_relaxed);
        spdlog::warn("trace export to {} failed: {} ({} spans dropped)", url_, error, batch.size());
      }
      lock.lock();
      if (!last) break;  // the next batch after the next wait (or at once if full)
    }
    if (last) return;
  }
}

bool SpanExporter::Post(const std::string& body, std::string* error) {
  const Curl& c = *curl_;
  CURL* curl = c.easy_init();
  if (!curl) {
    *error = "curl_easy_init failed";
    return false;
  }
  curl_slist* headers = c.slist_append(nullptr, "Content-Type: application/json");
  c.easy_setopt(curl, CURLOPT_URL, url_.c_str());
  c.easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  c.easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  c.easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  c.easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  c.easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  c.easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
  const CURLcode rc = c.easy_perform(curl);
  long status = 0;
  c.easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  c.slist_free_all(headers);
  c.easy_cleanup(curl);
  if (rc != CURLE_OK) {
    *error = c.easy_strerror(rc);
    return false;
  }
  if (status < 200 || status >= 300) {
    *error = absl::StrCat("HTTP ", status);
    return false;
  }
  return true;
}

nlohmann::json SpanExporter::Body(const std::vector<ExportedSpan>& spans, const std::string& node) {
  nlohmann::json out = nlohmann::json::array();
  for (const ExportedSpan& s : spans) {
    nlohmann::json attrs = nlohmann::json::array();
    for (const auto& [k, v] : s.strings)
      attrs.push_back({{"key", k}, {"value", {{"stringValue", v}}}});
    for (const auto& [k, v] : s.ints)
      attrs.push_back({{"key", k}, {"value", {{"intValue", U64(v)}}}});
    nlohmann::json span = {{"traceId", s.trace_id},
                           {"spanId", s.span_id},
                           {"name", s.name},
                           {"kind", 2},  // SPAN_KIND_SERVER: the hop serves the request
                           {"startTimeUnixNano", U64(s.start_unix_ns)},
                           {"endTimeUnixNano", U64(s.end_unix_ns)},
                           {"attributes", std::move(attrs)},
                           {"status", {{"code", s.error ? 2 : 0}}}};  // ERROR, UNSET
    if (!s.parent_id.empty()) span["parentSpanId"] = s.parent_id;
    out.push_back(std::move(span));
  }
  const nlohmann::json resource = {
      {"attributes",
       {{{"key", "service.name"}, {"value", {{"stringValue", "shunt-proxy"}}}},
        {{"key", "k8s.node.name"}, {"value", {{"stringValue", node}}}}}}};
  return {{"resourceSpans",
           {{{"resource", resource},
             {"scopeSpans", {{{"scope", {{"name", "shunt"}}}, {"spans", std::move(out)}}}}}}}};
}

}  // namespace shunt::proxy
