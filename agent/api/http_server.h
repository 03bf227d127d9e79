// A small HTTP/1.1 server for the agent's scrape endpoints (/metrics, the
// TrafficMetrics API): GET only, one request per connection, on a thread of
// its own (standalone Asio, C++20 coroutines), so a slow scraper never
// stalls the agent's main loop.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace shunt::api {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// HOST:PORT as Start takes it: the host's address and the port, or
// InvalidArgument naming what is wrong.
struct ListenAddress {
  std::string host;  // an IP literal; "" = all IPv4 addresses
  int port = 0;
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& addr);

class HttpServer {
 public:
  // path without the query string, and the query string.
  using Handler = std::function<HttpResponse(const std::string& path, const std::string& query)>;

  // `addr` is HOST:PORT (IPv4 or [IPv6]); port 0 picks a free one.
  // InvalidArgument for a malformed address, the socket error otherwise.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& addr, Handler handler);
  ~HttpServer();

  // The address actually bound, HOST:PORT.
  const std::string& address() const { return address_; }

 private:
  struct Impl;
  HttpServer() = default;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::string address_;
};

}  // namespace shunt::api
