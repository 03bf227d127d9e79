#include "server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <functional>
#include <list>
#include <mutex>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "agent/http/client.h"
#include "agent/http/request_parser.h"

namespace shunt::http {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;

// Closes the socket when a read or write takes longer than allowed.
template <typename Socket>
class Deadline {
 public:
  Deadline(net::io_context& io, Socket& sock) : timer_(io), sock_(sock) {}
  void Arm(std::chrono::milliseconds d) {
    timer_.expires_after(d);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // re-armed, cancelled or destroyed: `this` may be gone
      fired_ = true;
      boost::system::error_code ignored;
      sock_.close(ignored);
    });
  }
  void Cancel() { timer_.cancel(); }
  bool fired() const { return fired_; }

 private:
  net::steady_timer timer_;
  Socket& sock_;
  bool fired_ = false;
};

}  // namespace

struct Server::Impl {
  // A connection as its listener sees it: waiting for a request (idle,
  // and evictable) or being answered.
  struct Conn {
    std::function<void()> close;
    bool waiting = true;
  };
  struct ListenerState {
    const Router* router;
    size_t open = 0;         // touched on the server thread only
    std::list<Conn*> conns;  // oldest first
  };

  net::io_context io{1};
  ServerOptions opts;
  LoopQueue* loop = nullptr;
  Stats stats;
  std::vector<std::unique_ptr<ListenerState>> states;
  std::vector<std::unique_ptr<net::ip::tcp::acceptor>> tcp;
  std::vector<std::unique_ptr<net::local::stream_protocol::acceptor>> unix_acceptors;
  std::vector<std::string> unix_paths;

  // A kLoop request waiting for the agent's loop. Only the coroutine owns
  // it (its timer belongs to this io_context); the loop's work item holds a
  // weak reference, so a request the loop runs late, or never, touches
  // nothing that is gone.
  struct Pending {
    explicit Pending(net::io_context& io) : timer(io) {}
    net::steady_timer timer;
    std::optional<Response> response;
    bool threw = false;
  };
  // How the loop's thread reaches this server: `io` is cleared (under the
  // mutex) before the server goes, so a late answer is dropped, not posted
  // into a destroyed io_context.
  struct LoopLink {
    std::mutex mu;
    net::io_context* io = nullptr;
  };
  std::shared_ptr<LoopLink> link = std::make_shared<LoopLink>();

  static Response CallCatching(const Handler& h, const Request& r, bool* threw) {
    try {
      return h(r);
    } catch (const std::exception& e) {
      *threw = true;
      return Error(500, absl::StrCat("internal error: ", e.what()));
    } catch (...) {
      *threw = true;
      return Error(500, "internal error");
    }
  }

  net::awaitable<Response> Dispatch(Request req, const Router* router) {
    bool path_known = false;
    const Route* route = router->Find(req.method, req.path, &path_known);
    if (route == nullptr) {
      if (path_known)
        co_return Error(405, absl::StrCat(req.method, " is not served on ", req.path));
      co_return Error(404, absl::StrCat("no such path: ", req.path));
    }
    if (route->runs_on == RunsOn::kServer) {
      bool threw = false;
      Response r = CallCatching(route->handler, req, &threw);
      if (threw) ++stats.errors;
      co_return r;
    }
    auto pending = std::make_shared<Pending>(io);
    pending->timer.expires_after(opts.loop_timeout);
    loop->Post([link = link, weak = std::weak_ptr<Pending>(pending), handler = route->handler,
                req = std::move(req)]() {
      bool threw = false;
      Response r = CallCatching(handler, req, &threw);
      std::lock_guard<std::mutex> lock(link->mu);
      if (link->io == nullptr) return;  // the server is gone
      net::post(*link->io, [weak, threw, r = std::move(r)]() mutable {
        if (auto p = weak.lock()) {
          p->response = std::move(r);
          p->threw = threw;
          p->timer.cancel();
        }
      });
    });
    boost::system::error_code ec;
    co_await pending->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (pending->response) {
      if (pending->threw) ++stats.errors;
      co_return *std::move(pending->response);
    }
    co_return Error(503, absl::StrCat("the agent's loop did not answer within ",
                                      opts.loop_timeout.count(), " ms"));
  }

  template <typename Socket>
  net::awaitable<void> Serve(Socket sock, ListenerState* ls) {
    ++ls->open;
    ++stats.open;
    Conn conn{[&sock] {
      boost::system::error_code ignored;
      sock.close(ignored);
    }};
    ls->conns.push_back(&conn);
    const auto self = std::prev(ls->conns.end());
    Deadline<Socket> deadline(io, sock);
    beast::flat_buffer buffer;
    const RequestLimits limits{opts.max_header_bytes, opts.max_body_bytes};
    bool first = true;
    for (;;) {
      RequestParser parser;
      ConfigureParser(parser, limits);
      deadline.Arm(first ? opts.read_timeout : opts.idle_timeout);
      boost::system::error_code ec;
      conn.waiting = true;
      co_await bhttp::async_read(sock, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      conn.waiting = false;
      deadline.Cancel();
      std::optional<Response> early;  // answered without a handler, then closed
      if (ec) {
        if (deadline.fired()) {
          ++stats.timeouts;
        } else {
          early = RejectedRead(ec, limits);
        }
        if (!early) break;
        ++stats.errors;
      }
      first = false;
      Response resp;
      unsigned version = 11;
      bool keep_alive = false;
      if (early) {
        resp = *std::move(early);
      } else {
        ++stats.requests;
        version = parser.get().version();
        keep_alive = parser.get().keep_alive();
        resp = co_await Dispatch(ToRequest(parser.get()), ls->router);
      }
      bhttp::response<bhttp::string_body> out{static_cast<bhttp::status>(resp.status), version};
      out.set(bhttp::field::server, "shunt-agent");
      out.set(bhttp::field::content_type, resp.content_type);
      out.keep_alive(keep_alive);
      out.body() = std::move(resp.body);
      out.prepare_payload();
      deadline.Arm(opts.write_timeout);
      co_await bhttp::async_write(sock, out, net::redirect_error(net::use_awaitable, ec));
      deadline.Cancel();
      if (ec) {
        if (deadline.fired()) ++stats.timeouts;
        break;
      }
      if (!keep_alive) break;
    }
    boost::system::error_code ignored;
    sock.shutdown(net::socket_base::shutdown_both, ignored);
    sock.close(ignored);
    ls->conns.erase(self);
    --ls->open;
    --stats.open;
  }

  // At the cap, the connection that has waited longest for a request makes
  // room: a flood of idle or half-sent connections cannot lock out a
  // client that asks. True if one was evicted.
  bool EvictOldestWaiting(ListenerState* ls) {
    for (Conn* c : ls->conns) {
      if (!c->waiting) continue;
      c->waiting = false;  // evicted once
      c->close();
      ++stats.evicted;
      return true;
    }
    return false;
  }

  template <typename Acceptor>
  net::awaitable<void> Accept(Acceptor& acceptor, ListenerState* ls) {
    for (;;) {
      boost::system::error_code ec;
      auto sock = co_await acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
      if (ec == net::error::operation_aborted) co_return;
      if (ec) {
        // Out of file descriptors and the like: pause instead of spinning.
        net::steady_timer pause(io, std::chrono::milliseconds(50));
        co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      if (ls->open >= opts.max_connections && !EvictOldestWaiting(ls)) {
        ++stats.refused;  // every connection is being answered: no room
        sock.close(ec);
        continue;
      }
      net::co_spawn(io, Serve(std::move(sock), ls), net::detached);
    }
  }

  absl::StatusOr<std::string> ListenTcp(const std::string& addr, ListenerState* ls) {
    auto parsed = ParseListenAddress(addr);
    if (!parsed.ok()) return parsed.status();
    const net::ip::address ip =
        net::ip::make_address(parsed->host.empty() ? "0.0.0.0" : parsed->host);
    net::ip::tcp::endpoint ep(ip, static_cast<uint16_t>(parsed->port));
    auto acc = std::make_unique<net::ip::tcp::acceptor>(io);
    boost::system::error_code ec;
    acc->open(ep.protocol(), ec);
    if (!ec) acc->set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc->bind(ep, ec);
    if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("listen on ", addr, ": ", ec.message()));
    const auto bound = acc->local_endpoint();
    std::string out = bound.address().is_v6()
                          ? absl::StrCat("[", bound.address().to_string(), "]:", bound.port())
                          : absl::StrCat(bound.address().to_string(), ":", bound.port());
    net::co_spawn(io, Accept(*acc, ls), net::detached);
    tcp.push_back(std::move(acc));
    return out;
  }

  absl::StatusOr<std::string> ListenUnix(const std::string& path, ListenerState* ls) {
    std::error_code fs_ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), fs_ec);
    if (access(path.c_str(), F_OK) == 0) {
      if (UnixRequest(path, "GET", "/v1/ping", "", 500).ok())
        return absl::FailedPreconditionError(
            absl::StrCat("api socket ", path, ": another agent is listening there"));
      unlink(path.c_str());  // left behind by a killed agent
    }
    auto acc = std::make_unique<net::local::stream_protocol::acceptor>(io);
    boost::system::error_code ec;
    net::local::stream_protocol::endpoint ep(path);
    acc->open(ep.protocol(), ec);
    if (!ec) acc->bind(ep, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("api: bind ", path, ": ", ec.message()));
    chmod(path.c_str(), 0600);
    acc->listen(net::socket_base::max_listen_connections, ec);
    if (ec) return absl::UnavailableError(absl::StrCat("api: listen ", path, ": ", ec.message()));
    unix_paths.push_back(path);
    net::co_spawn(io, Accept(*acc, ls), net::detached);
    unix_acceptors.push_back(std::move(acc));
    return path;
  }
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  ListenAddress a;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &a.port) ||
      a.port < 0 || a.port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("'", addr, "': expected HOST:PORT, such as 0.0.0.0:9464"));
  a.host = addr.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  boost::system::error_code ec;
  net::ip::make_address(a.host.empty() ? "0.0.0.0" : a.host, ec);
  if (ec)
    return absl::InvalidArgumentError(
        absl::StrCat("'", addr, "': '", a.host, "' is not an IP address"));
  return a;
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options,
                                                      std::vector<Listener> listeners,
                                                      LoopQueue* loop) {
  std::unique_ptr<Server> s(new Server());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->opts = options;
  s->impl_->loop = loop;
  s->impl_->link->io = &s->impl_->io;
  for (const Listener& l : listeners) {
    s->impl_->states.push_back(
        std::make_unique<Impl::ListenerState>(Impl::ListenerState{l.router}));
    auto* ls = s->impl_->states.back().get();
    auto bound = l.kind == Listener::Kind::kTcp ? s->impl_->ListenTcp(l.address, ls)
                                                : s->impl_->ListenUnix(l.address, ls);
    if (!bound.ok()) {
      if (l.what.empty()) return bound.status();
      return absl::Status(bound.status().code(),
                          absl::StrCat(l.what, ": ", bound.status().message()));
    }
    s->addresses_.push_back(*bound);
  }
  s->thread_ = std::thread([impl = s->impl_.get()] { impl->io.run(); });
  return s;
}

const Server::Stats& Server::stats() const { return impl_->stats; }

Server::~Server() {
  if (impl_) {
    std::lock_guard<std::mutex> lock(impl_->link->mu);
    impl_->link->io = nullptr;  // the loop's late answers are dropped from now on
  }
  if (impl_) impl_->io.stop();
  if (thread_.joinable()) thread_.join();
  if (impl_)
    for (const std::string& p : impl_->unix_paths) unlink(p.c_str());
}

}  // namespace shunt::http
