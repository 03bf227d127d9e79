#include "proxy/server/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/unique_fd.h"
#include "proxy/server/plain_relay.h"
#include "proxy/server/tunnel_conn.h"
#include "spdlog/spdlog.h"

namespace shunt::proxy {

absl::StatusOr<lib::UniqueFd> ListenSocket(const std::string& ip, uint16_t port, int cpu) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family = AF_INET;
  if (auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
      inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof(*a4);
  } else if (auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
             inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    family = AF_INET6;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof(*a6);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("listen: '", ip, "' is not an IP address"));
  }
  const std::string where = absl::StrCat("listen on ", family == AF_INET6 ? "[" : "", ip,
                                         family == AF_INET6 ? "]" : "", ":", port);
  lib::UniqueFd fd(socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return lib::ErrnoStatus(errno, where);
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (family == AF_INET6) setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  // Before bind: the reuseport group learns it steers by CPU as it joins.
  if (cpu >= 0 && setsockopt(fd.get(), SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof(cpu)) != 0)
    return lib::ErrnoStatus(errno, absl::StrCat(where, ": SO_INCOMING_CPU ", cpu));
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return lib::ErrnoStatus(errno, where);
  if (listen(fd.get(), 4096) != 0) return lib::ErrnoStatus(errno, where);
  return fd;
}

std::vector<int> AllowedCpus() {
  std::vector<int> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  if (out.empty()) {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    for (int c = 0; c < std::max(1L, online); ++c) out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Worker>> Worker::Create(ProxyShared* shared) {
  auto loop = EventLoop::Create();
  if (!loop.ok()) return loop.status();
  std::unique_ptr<Worker> w(new Worker(shared));
  w->loop_ = *std::move(loop);
  return w;
}

absl::Status Worker::Listen(const std::vector<int>& cpus) {
  const ProxyOptions& o = shared_->options;
  const std::vector<int> any = {-1};
  for (const std::string& ip : o.node_ips) {
    for (const Port kind : {Port::kOutbound, Port::kInbound, Port::kL7}) {
      const uint16_t port = kind == Port::kOutbound  ? o.outbound_port
                            : kind == Port::kInbound ? o.inbound_port
                                                     : o.l7_port;
      if (port == 0) continue;
      // Local pods' connections only: a peer node's tunnel arrives on the
      // CPU that took the packet (with one NIC queue, always the same).
      const bool steered = kind != Port::kInbound && !cpus.empty();
      for (const int cpu : steered ? cpus : any) {
        auto fd = ListenSocket(ip, port, cpu);
        if (!fd.ok()) return fd.status();
        auto l = std::make_unique<Listener>();
        l->worker = this;
        l->fd = *std::move(fd);
        l->port = kind;
        if (absl::Status st = loop_->Watch(l->fd.get(), l.get()); !st.ok()) return st;
        listeners_.push_back(std::move(l));
      }
    }
  }
  // On the worker's own thread, once it runs (the workers are all known by then).
  if (shared_->options.l7_port != 0) loop_->Post([this] { PublishL7State(); });
  return absl::OkStatus();
}

void Worker::PublishL7State() {
  const auto& all = shared_->workers;
  const size_t me = static_cast<size_t>(std::find(all.begin(), all.end(), this) - all.begin());
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  shared_->l7_state.Publish(me, l7_balancers_.Snapshot(now));
  loop_->After(std::chrono::seconds(1), [this] { PublishL7State(); });
}

void L7StateBoard::Publish(size_t worker, nlohmann::json leaves) {
  std::lock_guard<std::mutex> lock(mu_);
  if (leaves.empty())
    by_worker_.erase(worker);
  else
    by_worker_[worker] = std::move(leaves);
}

nlohmann::json L7StateBoard::Collect() const {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [w, leaves] : by_worker_) out.push_back({{"thread", w}, {"leaves", leaves}});
  return out;
}

void Worker::Accept(Listener& l) {
  // A batch, then the connections already open get their turn.
  for (int i = 0; i < 32; ++i) {
    lib::UniqueFd fd(accept4(l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      // Out of descriptors or memory: the backlog waits; try again shortly
      // (edge-triggered, no new event comes for connections already queued).
      spdlog::warn("proxy: accept on {}: {}",
                   l.port == Port::kInbound    ? "inbound port"
                   : l.port == Port::kOutbound ? "outbound port"
                                               : "L7 port",
                   strerror(errno));
      Listener* which = &l;
      loop_->After(std::chrono::milliseconds(100), [this, which] {
        if (!draining_) Accept(*which);
      });
      return;
    }
    if (l.port == Port::kInbound) {
      auto rt = shared_->runtime.Get();
      auto t = TunnelConn::Server(this, rt->server, std::move(fd));
      servers_.insert(t);
      t->Start();
    } else if (l.port == Port::kOutbound) {
      HandleOutbound(std::move(fd));
    } else {
      HandleL7(std::move(fd));
    }
  }
  loop_->Again(l.fd.get());
}

void Worker::TunnelDone(TunnelConn* tunnel) {
  // Later, not here: the tunnel is still running the call that ended it.
  loop_->Later([this, tunnel] {
    std::shared_ptr<TunnelConn> gone;
    for (auto it = servers_.begin(); it != servers_.end(); ++it)
      if (it->get() == tunnel) {
        gone = *it;
        servers_.erase(it);
        break;
      }
    for (auto p = pool_.begin(); p != pool_.end() && !gone; ++p) {
      auto& v = p->second;
      for (auto it = v.begin(); it != v.end(); ++it)
        if (it->get() == tunnel) {
          gone = *it;
          v.erase(it);
          break;
        }
      if (gone && v.empty()) {
        pool_.erase(p);
        break;
      }
    }
    gone.reset();
    CheckDrained();
  });
}

void Worker::RelayDone(PlainRelay* relay) {
  loop_->Later([this, relay] {
    for (auto it = relays_.begin(); it != relays_.end(); ++it)
      if (it->get() == relay) {
        relays_.erase(it);
        break;
      }
    CheckDrained();
  });
}

void Worker::CheckDrained() {
  if (!draining_ || !servers_.empty() || !relays_.empty() || !l7_.empty()) return;
  for (const auto& [key, tunnels] : pool_)
    if (!tunnels.empty()) return;
  drained_.store(true, std::memory_order_release);
}

void Worker::Drain() {
  loop_->Post([this] {
    draining_ = true;
    for (auto& l : listeners_) loop_->Unwatch(l->fd.get());
    listeners_.clear();
    std::vector<std::shared_ptr<TunnelConn>> all(servers_.begin(), servers_.end());
    for (auto& [key, v] : pool_) all.insert(all.end(), v.begin(), v.end());
    for (auto& t : all) t->Drain();
    CheckDrained();
  });
}

}  // namespace shunt::proxy
