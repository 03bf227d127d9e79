// SpanExporter (proxy/server/span_exporter.h): the collector URL it posts
// to, the OTLP/HTTP JSON it sends (read back as a collector reads it), and
// what a collector that is down costs: spans, counted, never a wait.
#include "proxy/server/span_exporter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::proxy {
namespace {

using ::testing::HasSubstr;

TEST(SpanExporterTest, TheTracesUrlIsTheCollectorsOrItsBaseWithTheTracesPath) {
  EXPECT_EQ(*SpanExporter::TracesUrl("http://otel:4318"), "http://otel:4318/v1/traces");
  EXPECT_EQ(*SpanExporter::TracesUrl("http://otel:4318/"), "http://otel:4318/v1/traces");
  EXPECT_EQ(*SpanExporter::TracesUrl("https://otel.example/custom/traces"),
            "https://otel.example/custom/traces");
  auto bad = SpanExporter::TracesUrl("otel:4318");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("'otel:4318' is not an http:// or https:// URL"));
  EXPECT_FALSE(SpanExporter::TracesUrl("http:///v1/traces").ok());
}

ExportedSpan OneSpan(int i) {
  return ExportedSpan{.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                      .span_id = absl::StrCat("00f067aa0ba902b", i),
                      .parent_id = "a3ce929d0e0e4736",
                      .name = "GET demo/api#read",
                      .start_unix_ns = 1'700'000'000'000'000'000,
                      .end_unix_ns = 1'700'000'000'002'000'000,
                      .error = i == 2,
                      .strings = {{"http.request.method", "GET"}},
                      .ints = {{"http.response.status_code", i == 2 ? 503 : 200}}};
}

TEST(SpanExporterTest, TheBodyIsOtlpJson) {
  const nlohmann::json b = SpanExporter::Body({OneSpan(1), OneSpan(2)}, "node-a");
  const auto& rs = b["resourceSpans"][0];
  EXPECT_EQ(rs["resource"]["attributes"][0]["key"], "service.name");
  EXPECT_EQ(rs["resource"]["attributes"][0]["value"]["stringValue"], "shunt-proxy");
  EXPECT_EQ(rs["resource"]["attributes"][1]["value"]["stringValue"], "node-a");
  const auto& spans = rs["scopeSpans"][0]["spans"];
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0]["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(spans[0]["spanId"], "00f067aa0ba902b1");
  EXPECT_EQ(spans[0]["parentSpanId"], "a3ce929d0e0e4736");
  // 64-bit integers as decimal strings (OTLP's JSON mapping).
  EXPECT_EQ(spans[0]["startTimeUnixNano"], "1700000000000000000");
  EXPECT_EQ(spans[0]["attributes"][1]["value"]["intValue"], "200");
  EXPECT_EQ(spans[0]["status"]["code"], 0);
  EXPECT_EQ(spans[1]["status"]["code"], 2);
}

// A collector on 127.0.0.1 that answers each POST 200 and keeps the bodies.
class Collector {
 public:
  Collector() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(listen(fd_, 8), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Collector() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_, "/v1/traces"); }
  std::string requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Serve() {
    for (;;) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[65536];
      for (;;) {
        const size_t head = in.find("\r\n\r\n");
        if (head != std::string::npos) {
          const size_t at = in.find("Content-Length: ");
          const size_t want = at == std::string::npos ? 0 : std::stoul(in.substr(at + 16));
          if (in.size() >= head + 4 + want) break;
        }
        pollfd p{c, POLLIN, 0};
        if (poll(&p, 1, 5000) != 1) break;
        const ssize_t n = recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_ += in;
      }
      const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
      (void)!send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
      close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::mutex mu_;
  std::string requests_;
  std::thread thread_;
};

bool WaitFor(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

TEST(SpanExporterTest, SpansArePostedToTheCollector) {
  Collector collector;
  // libcurl is loaded here (dlopen), not at the proxy's start.
  auto started = SpanExporter::Start(collector.url(), "node-a");
  ASSERT_TRUE(started.ok()) << started.status();
  SpanExporter& exporter = **started;
  for (int i = 1; i <= 3; ++i) exporter.Add(OneSpan(i));
  ASSERT_TRUE(WaitFor([&] { return exporter.exported() == 3; }));
  const std::string got = collector.requests();
  EXPECT_THAT(got, HasSubstr("POST /v1/traces HTTP/1.1"));
  EXPECT_THAT(got, HasSubstr("Content-Type: application/json"));
  const nlohmann::json body = nlohmann::json::parse(got.substr(got.find("\r\n\r\n") + 4));
  EXPECT_EQ(body["resourceSpans"][0]["scopeSpans"][0]["spans"].size(), 3u);
  EXPECT_EQ(exporter.dropped(), 0u);
}

TEST(SpanExporterTest, ACollectorThatIsDownCostsSpansCountedNeverAWait) {
  // A port nothing listens on.
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  socklen_t len = sizeof(a);
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  close(s);
  auto started =
      SpanExporter::Start(absl::StrCat("http://127.0.0.1:", ntohs(a.sin_port), "/v1/traces"), "n");
  ASSERT_TRUE(started.ok()) << started.status();
  SpanExporter& exporter = **started;
  const auto before = std::chrono::steady_clock::now();
  for (int i = 0; i < 2; ++i) exporter.Add(OneSpan(1));
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(100));
  ASSERT_TRUE(WaitFor([&] { return exporter.dropped() == 2; }));
  EXPECT_GE(exporter.failed_posts(), 1u);
  EXPECT_EQ(exporter.exported(), 0u);
}

}  // namespace
}  // namespace shunt::proxy
