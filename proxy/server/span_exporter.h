// Span export (issue 17 item 4; docs/l7.md "Tracing"): each request the L7
// layer forwards is a span of this hop's (trace_context.h gives it its
// ids); with --trace-otlp-endpoint set, those spans go to an OpenTelemetry
// collector as OTLP/HTTP JSON (POST .../v1/traces, the collector's own
// format: opentelemetry-proto's ExportTraceServiceRequest in its JSON
// mapping). Off when the URL is empty.
//
// The request path only queues (a mutex and a bounded deque: never a
// system call, never a wait); one thread of its own batches what is queued
// each second (or each kBatch spans) and posts it with libcurl, with a
// short timeout. A collector that is down or slow costs spans, counted,
// never requests: a full queue drops the newest.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::proxy {

struct ExportedSpan {
  std::string trace_id, span_id, parent_id;  // hex, as in traceparent
  std::string name;                          // "GET demo/api#read"
  int64_t start_unix_ns = 0, end_unix_ns = 0;
  bool error = false;  // no response, or a 5xx
  // String and integer attributes (OpenTelemetry's semantic names).
  std::vector<std::pair<std::string, std::string>> strings;
  std::vector<std::pair<std::string, int64_t>> ints;
};

class SpanExporter {
 public:
  static constexpr size_t kMaxQueued = 8192;
  static constexpr size_t kBatch = 512;
  struct Curl;  // libcurl's functions, from dlopen (span_exporter.cc)

  // `endpoint`: the collector's base URL (http://host:4318, to which
  // /v1/traces is added) or its traces URL (one with a path). Refused
  // unless http:// or https://.
  static absl::StatusOr<std::string> TracesUrl(const std::string& endpoint);

  // Loads libcurl (only now: a proxy that exports nothing never maps it
  // and the score of libraries it pulls in, ~3 MiB of its resident
  // memory) and starts the exporting thread. `node`: the resource's
  // k8s.node.name. An error if libcurl cannot be loaded.
  static absl::StatusOr<std::unique_ptr<SpanExporter>> Start(std::string traces_url,
                                                             std::string node);
  ~SpanExporter();  // posts what is queued (one try), then stops
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  void Add(ExportedSpan span);

  // The request body for `spans` (public for tests).
  static nlohmann::json Body(const std::vector<ExportedSpan>& spans, const std::string& node);

  uint64_t exported() const { return exported_.load(std::memory_order_relaxed); }
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  uint64_t failed_posts() const { return failed_posts_.load(std::memory_order_relaxed); }

 private:
  SpanExporter(const Curl* curl, std::string traces_url, std::string node);
  void Run();
  bool Post(const std::string& body, std::string* error);

  const Curl* curl_;
  const std::string url_, node_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<ExportedSpan> queue_;
  bool stopping_ = false;
  std::atomic<uint64_t> exported_{0}, dropped_{0}, failed_posts_{0};
  std::thread thread_;
};

}  // namespace shunt::proxy
