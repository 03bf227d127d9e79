#include "proxy/server/worker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/fmt_absl.h"
#include "agent/lib/unique_fd.h"
#include "proxy/server/tunnel_conn.h"
#include "spdlog/spdlog.h"

namespace shunt::proxy {
namespace {

// A listening socket on ip:port shared with the other workers (SO_REUSEPORT).
absl::StatusOr<lib::UniqueFd> ListenOn(const std::string& ip, uint16_t port) {
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
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return lib::ErrnoStatus(errno, where);
  if (listen(fd.get(), 4096) != 0) return lib::ErrnoStatus(errno, where);
  return fd;
}

}  // namespace

absl::Status Worker::Listen() {
  for (const std::string& ip : shared_->options.node_ips) {
    for (const bool inbound : {false, true}) {
      const uint16_t port =
          inbound ? shared_->options.inbound_port : shared_->options.outbound_port;
      auto fd = ListenOn(ip, port);
      if (!fd.ok()) return fd.status();
      const bool v6 = ip.find(':') != std::string::npos;
      auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(
          io_, v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd->Release());
      AcceptLoop(*acceptor, inbound);
      acceptors_.push_back(std::move(acceptor));
    }
  }
  return absl::OkStatus();
}

void Worker::AcceptLoop(asio::ip::tcp::acceptor& acceptor, bool inbound) {
  acceptor.async_accept(
      [this, &acceptor, inbound](const asio::error_code& ec, asio::ip::tcp::socket socket) {
        if (ec == asio::error::operation_aborted || draining_) return;
        if (ec) {
          spdlog::warn("proxy: accept on {}: {}", inbound ? "inbound port" : "outbound port",
                       ec.message());
        } else if (inbound) {
          auto rt = shared_->runtime.Get();
          auto t = TunnelConn::Server(this, rt->server, std::move(socket));
          servers_.insert(t);
          t->Start();
        } else {
          HandleOutbound(std::move(socket));
        }
        AcceptLoop(acceptor, inbound);
      });
}

void Worker::TunnelDone(TunnelConn* tunnel) {
  // Later, not here: the tunnel is still running the call that ended it.
  asio::post(io_, [this, tunnel] {
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
  });
}

void Worker::Drain() {
  asio::post(io_, [this] {
    draining_ = true;
    asio::error_code ec;
    for (auto& a : acceptors_) a->close(ec);
    std::vector<std::shared_ptr<TunnelConn>> all(servers_.begin(), servers_.end());
    for (auto& [key, v] : pool_) all.insert(all.end(), v.begin(), v.end());
    for (auto& t : all) t->Drain();
  });
}

}  // namespace shunt::proxy
