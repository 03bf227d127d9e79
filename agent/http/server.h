// The agent's one HTTP layer, part 2: an HTTP/1.1 server (Boost.Beast over
// Boost.Asio, on a thread of its own) for the local API on the unix socket
// and for /metrics, TrafficMetrics and health on TCP.
//
// What a bad client cannot do to it: every read and write has a deadline
// (a client that sends half a request, or asks and never reads, is cut
// off), keep-alive connections idle out, the number of open connections is
// capped (past it, the connection that has waited longest for a request is
// closed to make room, so idle floods cannot lock a client out), request heads and bodies
// are bounded, and a handler that throws answers 500. Handlers run where
// their route says (router.h): on the agent's loop through a LoopQueue, or
// on the server thread. A loop that does not answer within
// loop_timeout gets the client a 503, not a hang.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/http/loop_queue.h"
#include "agent/http/router.h"

namespace shunt::http {

struct ServerOptions {
  size_t max_connections = 256;                     // per listener
  std::chrono::milliseconds read_timeout{10'000};   // a whole request, once it starts
  std::chrono::milliseconds idle_timeout{30'000};   // between requests on one connection
  std::chrono::milliseconds write_timeout{10'000};  // a whole response
  std::chrono::milliseconds loop_timeout{10'000};   // for a kLoop handler's answer
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
};

struct Listener {
  enum class Kind { kTcp, kUnix };
  Kind kind;
  std::string address;   // HOST:PORT (IPv4 or [IPv6], port 0 = any) or a socket path
  const Router* router;  // must outlive the server
  std::string what;      // prefixes errors about this listener ("--metrics-addr"); may be empty
};

// HOST:PORT as the TCP listener takes it: the host's address and the port,
// or InvalidArgument naming what is wrong.
struct ListenAddress {
  std::string host;  // an IP literal; "" = all IPv4 addresses
  int port = 0;
};
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& addr);

class Server {
 public:
  struct Stats {
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> refused{0};   // closed at the cap: all others were being answered
    std::atomic<uint64_t> evicted{0};   // waiting connections closed to make room at the cap
    std::atomic<uint64_t> timeouts{0};  // connections cut at a deadline
    std::atomic<uint64_t> errors{0};    // handlers that threw, malformed requests
    std::atomic<uint64_t> open{0};      // connections open now
  };

  // Binds every listener before returning (errors name the address; a unix
  // socket where another agent answers is FailedPrecondition), then serves
  // on its own thread. `loop` runs kLoop handlers.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options,
                                                       std::vector<Listener> listeners,
                                                       LoopQueue* loop);
  ~Server();  // stops serving, closes every connection, removes unix sockets

  // The addresses actually bound, in the listeners' order (HOST:PORT or path).
  const std::vector<std::string>& addresses() const { return addresses_; }
  const Stats& stats() const;

 private:
  struct Impl;
  Server() = default;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::vector<std::string> addresses_;
};

}  // namespace shunt::http
