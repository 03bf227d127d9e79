// Idle HTTP/1.1 upstream connections the proxy's client connections share
// (HAProxy's http-reuse): a client connection idle for a while (or ending
// between requests) parks its upstream connection here, and the next
// request of any client connection, on any of the proxy's threads, from
// the same source to the same destination takes it instead of connecting.
// So many idle keep-alive clients do not each pin an upstream socket (and
// its server's memory), and a new client connection's first request often
// needs no handshake.
//
// Connections are shared only between clients of the same source address
// (the client pod's: the proxy's upstream sockets are bound to it, and a
// tunnel stream to another node speaks for it): never across pods.
//
// A parked socket is watched by no loop (any thread may take it): one its
// server closed, or wrote to unasked, is found so when taken (a peek) and
// closed instead; one idle past max_idle is closed at the next Park or
// Take. Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "agent/lib/unique_fd.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy::http {

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    size_t max_per_route = 64;  // per (source, destination)
    size_t max_total = 4096;
    // Servers close idle connections too (nginx: 75 s): a parked one is
    // closed before theirs is likely to.
    std::chrono::milliseconds max_idle{30000};
    // Told of each connection parked and each taken back (counters).
    std::function<void()> on_park, on_reuse;
  };
  struct Taken {
    lib::UniqueFd fd;
    bool via_pair = false;  // connected by its opener (open_upstream), not connect()ed
  };

  UpstreamPool() : UpstreamPool(Options{}) {}
  explicit UpstreamPool(Options options) : options_(std::move(options)) {}
  UpstreamPool(const UpstreamPool&) = delete;
  UpstreamPool& operator=(const UpstreamPool&) = delete;

  // Keeps `fd`, connected to `to` from `source` and between responses
  // (nothing sent or read pending; watched by no loop). False, and closed,
  // when the pool is full.
  bool Park(const Destination& source, const Destination& to, lib::UniqueFd fd, bool via_pair);
  // A live kept connection from `source` to `to` (the last parked first),
  // or an invalid fd.
  Taken Take(const Destination& source, const Destination& to);
  // Closes what has been parked longer than max_idle (Park and Take call
  // it at most once a second; tests call it with their own `now`).
  void Expire(Clock::time_point now);

  size_t size() const;

 private:
  struct Entry {
    lib::UniqueFd fd;
    bool via_pair = false;
    Clock::time_point parked_at;
  };
  static std::string Route(const Destination& source, const Destination& to);
  void ExpireLocked(Clock::time_point now);

  const Options options_;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<Entry>> routes_;  // oldest first
  size_t total_ = 0;
  Clock::time_point last_expiry_{};
};

}  // namespace shunt::proxy::http
