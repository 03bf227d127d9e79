#include "http_server.h"

#include <asio.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shunt::api {
namespace {

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Internal Server Error";
  }
}

std::string Render(const HttpResponse& r) {
  return absl::StrCat("HTTP/1.1 ", r.status, " ", Reason(r.status), "\r\nContent-Type: ", r.content_type,
                      "\r\nContent-Length: ", r.body.size(), "\r\nConnection: close\r\n\r\n", r.body);
}

}  // namespace

struct HttpServer::Impl {
  asio::io_context io{1};
  asio::ip::tcp::acceptor acceptor{io};
  Handler handler;

  asio::awaitable<void> Serve(asio::ip::tcp::socket sock) {
    std::string buf;
    HttpResponse resp;
    try {
      // Scrapers send small requests: 16 KiB of headers is plenty.
      std::size_t n = co_await asio::async_read_until(sock, asio::dynamic_buffer(buf, 16384), "\r\n\r\n",
                                                       asio::use_awaitable);
      const std::string head = buf.substr(0, n);
      const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
      if (sp1 == std::string::npos || sp2 == std::string::npos) {
        resp = {400, "text/plain; charset=utf-8", "malformed request line\n"};
      } else if (head.substr(0, sp1) != "GET") {
        resp = {405, "text/plain; charset=utf-8", "only GET is served\n"};
      } else {
        const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        const size_t q = target.find('?');
        try {
          resp = handler(target.substr(0, q), q == std::string::npos ? "" : target.substr(q + 1));
        } catch (const std::exception& e) {
          resp = {500, "text/plain; charset=utf-8", absl::StrCat("internal error: ", e.what(), "\n")};
        }
      }
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::not_found)  // read_until hit the size limit
        resp = {431, "text/plain; charset=utf-8", "request headers over 16 KiB\n"};
      else
        co_return;  // the client went away
    }
    std::string out = Render(resp);
    asio::error_code ec;
    co_await asio::async_write(sock, asio::buffer(out), asio::redirect_error(asio::use_awaitable, ec));
    sock.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  }

  asio::awaitable<void> Accept() {
    for (;;) {
      asio::error_code ec;
      asio::ip::tcp::socket s = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;  // e.g. EMFILE: keep serving the next one
      asio::co_spawn(io, Serve(std::move(s)), asio::detached);
    }
  }
};

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  ListenAddress a;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &a.port) || a.port < 0 ||
      a.port > 65535)
    return absl::InvalidArgumentError(absl::StrCat("'", addr, "': expected HOST:PORT, such as 0.0.0.0:9464"));
  a.host = addr.substr(0, colon);
  if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']') a.host = a.host.substr(1, a.host.size() - 2);
  asio::error_code ec;
  asio::ip::make_address(a.host.empty() ? "0.0.0.0" : a.host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("'", addr, "': '", a.host, "' is not an IP address"));
  return a;
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& addr, Handler handler) {
  auto parsed = ParseListenAddress(addr);
  if (!parsed.ok()) return parsed.status();
  const int port = parsed->port;
  const asio::ip::address ip = asio::ip::make_address(parsed->host.empty() ? "0.0.0.0" : parsed->host);
  asio::error_code ec;

  std::unique_ptr<HttpServer> s(new HttpServer());
  s->impl_ = std::make_unique<Impl>();
  s->impl_->handler = std::move(handler);
  asio::ip::tcp::endpoint ep(ip, static_cast<uint16_t>(port));
  auto& acc = s->impl_->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("listen on ", addr, ": ", ec.message()));
  const auto bound = acc.local_endpoint();
  s->address_ = bound.address().is_v6() ? absl::StrCat("[", bound.address().to_string(), "]:", bound.port())
                                        : absl::StrCat(bound.address().to_string(), ":", bound.port());
  asio::co_spawn(s->impl_->io, s->impl_->Accept(), asio::detached);
  s->thread_ = std::thread([impl = s->impl_.get()] { impl->io.run(); });
  return s;
}

HttpServer::~HttpServer() {
  if (impl_) impl_->io.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace shunt::api
