// The L7 layer's HTTP/1.x proxying on real sockets (no root): a client on
// one end of a socket pair, the proxy on an EventLoop thread, and an
// upstream HTTP server on 127.0.0.1 in a thread of the test.
#include "proxy/http/h1_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/h1_messages.h"

namespace shunt::proxy::http {
namespace {

using ::testing::HasSubstr;

using Messages = test_util::RecordedMessages;

// Reads from `fd` until `want` messages are complete or the peer closes;
// false on a 5 s timeout or a parse error. *closed says the peer closed.
bool ReadMessages(int fd, H1Parser& parser, Messages& m, int want, bool* closed = nullptr) {
  std::string pending;
  while (m.ends < want) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    char buf[16384];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      if (closed) *closed = true;
      return parser.FeedEof().ok() && m.ends >= want;
    }
    pending.append(buf, static_cast<size_t>(n));
    while (!pending.empty()) {
      auto used = parser.Feed(pending);
      if (!used.ok()) return false;
      pending.erase(0, *used);
      if (parser.paused())
        parser.Resume();
      else if (*used == 0)
        break;
    }
  }
  return true;
}

// An HTTP/1.1 server on 127.0.0.1 answering "<method> <target> <body bytes>";
// a target under /close answers without a length and closes.
class Upstream {
 public:
  Upstream() {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    EXPECT_EQ(listen(listener_, 16), 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~Upstream() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    thread_.join();
    {
      std::lock_guard<std::mutex> l(mu_);
      for (int c : conns_) shutdown(c, SHUT_RDWR);  // ends each connection's thread
    }
    for (auto& t : conn_threads_) t.join();
    for (int c : conns_) close(c);
  }
  Destination address() const {
    Destination d;
    const uint32_t lo = htonl(INADDR_LOOPBACK);
    memcpy(d.addr.data(), &lo, 4);
    d.port = port_;
    return d;
  }
  int connections() const { return connections_; }
  // The request heads it received, in order.
  std::vector<H1Head> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  // One thread per connection, so a slow answer holds up only its own.
  void Serve() {
    for (;;) {
      const int c = accept(listener_, nullptr, nullptr);
      if (c < 0) return;
      ++connections_;
      {
        std::lock_guard<std::mutex> l(mu_);
        conns_.push_back(c);
      }
      conn_threads_.emplace_back([this, c] { ServeOne(c); });
    }
  }
  void ServeOne(int c) {
    {
      Messages m;
      H1Parser parser(H1Parser::Kind::kRequest, {}, &m);
      for (int served = 0;; ++served) {
        if (!ReadMessages(c, parser, m, served + 1)) break;
        const H1Head& h = m.heads[static_cast<size_t>(served)];
        {
          std::lock_guard<std::mutex> l(mu_);
          seen_.push_back(h);
        }
        const std::string body = absl::StrCat(h.method, " ", h.target, " ",
                                              m.bodies[static_cast<size_t>(served)].size());
        if (absl::StartsWith(h.target, "/slow")) {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the slow upstream itself
        }
        if (absl::StartsWith(h.target, "/close")) {
          const std::string r = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body;
          (void)!send(c, r.data(), r.size(), MSG_NOSIGNAL);
          shutdown(c, SHUT_RDWR);  // the end of the body
          break;
        }
        const std::string r =
            absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(), "\r\n\r\n", body);
        (void)!send(c, r.data(), r.size(), MSG_NOSIGNAL);
      }
    }
    // Closed by the destructor, after shutdown: the number stays taken until then.
  }
  int listener_ = -1;
  std::mutex mu_;
  std::vector<H1Head> seen_;
  std::vector<int> conns_;
  std::vector<std::thread> conn_threads_;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

class H1ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto l = EventLoop::Create();
    ASSERT_TRUE(l.ok());
    loop_ = *std::move(l);
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void TearDown() override {
    loop_->Post([this] { proxies_.clear(); });
    loop_->Stop();
    thread_.join();
  }
  // A client connection through a proxy to `to`: the client's end.
  // `judge`, if set, replaces the test's (which denies /admin*).
  lib::UniqueFd Connect(
      const Destination& to, H1Proxy::Options options = {},
      std::function<H1Proxy::Verdict(const H1Head&, const RequestView&)> judge = nullptr) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int theirs = sv[1];
    fcntl(theirs, F_SETFL, O_NONBLOCK);
    H1Proxy::Hooks hooks;
    if (!judge)
      judge = [](const H1Head&, const RequestView& r) {
        H1Proxy::Verdict v;
        if (absl::StartsWith(r.path, "/admin")) {
          v.allow = false;
          v.route = "shop/api";
          v.reason = "no-route-matched";
        }
        return v;
      };
    hooks.judge = [judge](const H1Head& h, const RequestView& r, H1Proxy::Verdict* v) {
      *v = judge(h, r);
    };
    hooks.on_request = [this](const H1Proxy::Record& r) {
      std::lock_guard<std::mutex> l(mu_);
      records_.push_back(r);
    };
    loop_->Post([this, theirs, to, hooks, options] {
      auto p = H1Proxy::Start(loop_.get(), lib::UniqueFd(theirs), to, options, hooks);
      if (p) proxies_.push_back(p);
    });
    return lib::UniqueFd(sv[0]);
  }
  std::vector<H1Proxy::Record> Records() {
    std::lock_guard<std::mutex> l(mu_);
    return records_;
  }
  static void Send(int fd, absl::string_view s) {
    ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }

  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
  std::vector<std::shared_ptr<H1Proxy>> proxies_;  // the loop thread's
  std::mutex mu_;
  std::vector<H1Proxy::Record> records_;
};

TEST_F(H1ProxyTest, ADeniedRequestGets403AndTheConnectionServesTheNext) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  Send(c.get(), "GET /books?page=2 HTTP/1.1\r\nHost: shop\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  Send(c.get(), "POST /admin/users HTTP/1.1\r\nHost: shop\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 2));
  Send(c.get(), "GET /books HTTP/1.1\r\nHost: shop\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 3));
  EXPECT_EQ(m.heads[0].status, 200);
  EXPECT_EQ(m.bodies[0], "GET /books?page=2 0");
  EXPECT_EQ(m.heads[1].status, 403);
  // The reason, and the route the judge named.
  EXPECT_EQ(m.heads[1].Header("x-shunt-denied"), "no-route-matched; route=shop/api");
  EXPECT_EQ(m.heads[2].status, 200);
  EXPECT_EQ(m.bodies[2], "GET /books 0");
  EXPECT_EQ(up.connections(), 1) << "one upstream connection, kept alive";
  auto r = Records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].status, 403);
  EXPECT_TRUE(r[1].local);
  EXPECT_EQ(r[1].reason, "no-route-matched");
  EXPECT_EQ(r[2].status, 200);
}

// Requests of one connection picked to different endpoints (a service's,
// per request): each endpoint's upstream connection is kept between them.
TEST_F(H1ProxyTest, RequestsToAlternatingEndpointsKeepOneConnectionEach) {
  Upstream a, b;
  const Destination to_a = a.address(), to_b = b.address();
  lib::UniqueFd c = Connect(to_a, {}, [to_a, to_b](const H1Head&, const RequestView& r) {
    H1Proxy::Verdict v;
    v.upstream = absl::StartsWith(r.path, "/b") ? to_b : to_a;
    return v;
  });
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  for (int i = 0; i < 6; ++i) {
    Send(c.get(), absl::StrCat("GET /", i % 2 ? "b" : "a", i, " HTTP/1.1\r\nHost: s\r\n\r\n"));
    ASSERT_TRUE(ReadMessages(c.get(), responses, m, i + 1)) << i;
    EXPECT_EQ(m.bodies[static_cast<size_t>(i)], absl::StrCat("GET /", i % 2 ? "b" : "a", i, " 0"));
  }
  EXPECT_EQ(a.connections(), 1);
  EXPECT_EQ(b.connections(), 1);
}

TEST_F(H1ProxyTest, PipelinedRequestsAreAnsweredInOrder) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Send(c.get(),
       "GET /a HTTP/1.1\r\nHost: s\r\n\r\n"
       "POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\n\r\nxyz"
       "GET /admin HTTP/1.1\r\nHost: s\r\n\r\n"
       "GET /c HTTP/1.1\r\nHost: s\r\n\r\n");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 4));
  EXPECT_EQ(m.bodies[0], "GET /a 0");
  EXPECT_EQ(m.bodies[1], "POST /b 3");
  EXPECT_EQ(m.heads[2].status, 403);
  EXPECT_EQ(m.bodies[3], "GET /c 0");
}

TEST_F(H1ProxyTest, AChunkedBodyStreamsAndACloseDelimitedResponseIsRechunked) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Send(c.get(),
       "PUT /upload HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n"
       "4\r\nabcd\r\n");
  Send(c.get(), "6\r\nefghij\r\n0\r\n\r\n");
  Send(c.get(), "GET /close/x HTTP/1.1\r\nHost: s\r\n\r\n");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 2));
  EXPECT_EQ(m.bodies[0], "PUT /upload 10");
  // The upstream closed after a body without length; the client's
  // connection stays open with the body chunked.
  EXPECT_TRUE(m.heads[1].chunked);
  EXPECT_TRUE(m.heads[1].keep_alive);
  EXPECT_EQ(m.bodies[1], "GET /close/x 0");
  Send(c.get(), "GET /after HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 3));
  EXPECT_EQ(m.bodies[2], "GET /after 0");
  EXPECT_EQ(up.connections(), 2) << "a new upstream connection after the close";
}

TEST_F(H1ProxyTest, AMalformedRequestGets400AndTheConnectionCloses) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Send(c.get(), "GET / HTTP/1.1\r\nHost : s\r\n\r\n");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  bool closed = false;
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1, &closed));
  EXPECT_EQ(m.heads[0].status, 400);
  EXPECT_THAT(m.bodies[0], HasSubstr("whitespace in a header name"));
  EXPECT_FALSE(m.heads[0].keep_alive);
  char byte;
  pollfd p{c.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(recv(c.get(), &byte, 1, 0), 0) << "closed after the 400";
  EXPECT_EQ(up.connections(), 0) << "nothing reached the upstream";
}

TEST_F(H1ProxyTest, AnUpstreamThatRefusesGets502) {
  Destination nowhere;
  {
    Upstream gone;
    nowhere = gone.address();
  }  // its port is closed now
  lib::UniqueFd c = Connect(nowhere);
  Send(c.get(), "GET / HTTP/1.1\r\nHost: s\r\n\r\n");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  EXPECT_EQ(m.heads[0].status, 502);
  EXPECT_THAT(std::string(m.heads[0].Header("x-shunt-error")),
              HasSubstr("upstream-connect-failed"));
}

TEST_F(H1ProxyTest, EachForwardedRequestCarriesTheTraceWithThisHopsSpan) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  Send(c.get(),
       "GET /a HTTP/1.1\r\nHost: s\r\n"
       "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
       "tracestate: congo=t61rcWkgMzE\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  Send(c.get(), "GET /b HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 2));
  auto seen = up.seen();
  ASSERT_EQ(seen.size(), 2u);
  std::string trace, span;
  bool sampled = false;
  ASSERT_TRUE(ParseTraceparent(seen[0].Header("traceparent"), &trace, &span, &sampled));
  EXPECT_EQ(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(span, "00f067aa0ba902b7") << "a span of this hop's";
  EXPECT_EQ(seen[0].Header("tracestate"), "congo=t61rcWkgMzE");
  int traceparents = 0;
  for (const auto& [n, v] : seen[0].headers)
    traceparents += absl::EqualsIgnoreCase(n, "traceparent");
  EXPECT_EQ(traceparents, 1) << "replaced, not added";
  std::string trace2, span2;
  ASSERT_TRUE(ParseTraceparent(seen[1].Header("traceparent"), &trace2, &span2, &sampled));
  EXPECT_NE(trace2, trace) << "a request without context starts a trace";
  auto r = Records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].trace_id, trace);
  EXPECT_EQ(r[0].span_id, span);
  EXPECT_EQ(r[0].parent_id, "00f067aa0ba902b7");
  EXPECT_TRUE(r[1].parent_id.empty());
}

// Waits for the peer to close `fd`, reading what comes first; false after 5 s.
bool WaitClosed(int fd) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) != 1) return false;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return true;
  }
}

TEST_F(H1ProxyTest, ASlowClientGets408AndAnIdleOneIsClosed) {
  Upstream up;
  H1Proxy::Options o;
  o.head_timeout_ms = 100;
  o.idle_timeout_ms = 200;
  lib::UniqueFd slow = Connect(up.address(), o);
  Send(slow.get(), "GET / HTTP/1.1\r\nHost: s\r\nX-Loris: ");  // and nothing more
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  bool closed = false;
  ASSERT_TRUE(ReadMessages(slow.get(), responses, m, 1, &closed));
  EXPECT_EQ(m.heads[0].status, 408);
  EXPECT_FALSE(m.heads[0].keep_alive);
  EXPECT_TRUE(WaitClosed(slow.get()));

  lib::UniqueFd idle = Connect(up.address(), o);
  Messages m2;
  H1Parser responses2(H1Parser::Kind::kResponse, {}, &m2);
  Send(idle.get(), "GET /once HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(idle.get(), responses2, m2, 1));
  EXPECT_EQ(m2.heads[0].status, 200);
  EXPECT_TRUE(WaitClosed(idle.get())) << "closed after the idle timeout";
  auto r = Records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].status, 408);
  EXPECT_EQ(r[0].reason, "request-head-timeout");
}

// An endpoint that never answers a SYN (a full accept queue drops them,
// as a blackholed address would): past the connect timeout the attempt is
// a connect failure, 502, not the kernel's two minutes of retransmissions.
TEST_F(H1ProxyTest, AnUpstreamThatNeverAnswersTheHandshakeGets502AfterTheConnectTimeout) {
  lib::UniqueFd listener(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{.sin_family = AF_INET, .sin_port = 0, .sin_addr = {htonl(INADDR_LOOPBACK)}};
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(listener.get(), 0), 0);
  socklen_t len = sizeof(a);
  getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  // One connection fills the accept queue (never accepted); later SYNs are dropped.
  lib::UniqueFd filler(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(connect(filler.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  Destination blackhole;
  memcpy(blackhole.addr.data(), &a.sin_addr, 4);
  blackhole.port = ntohs(a.sin_port);
  H1Proxy::Options o;
  o.connect_timeout_ms = 200;
  lib::UniqueFd c = Connect(blackhole, o);
  const auto sent = std::chrono::steady_clock::now();
  Send(c.get(), "GET / HTTP/1.1\r\nHost: s\r\n\r\n");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  EXPECT_EQ(m.heads[0].status, 502);
  EXPECT_EQ(m.heads[0].Header("x-shunt-error"), "upstream-connect-timeout");
  EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(200))
      << "not before the timeout";
}

// A request whose body stops coming holds the connection, and its
// upstream's, only for the stream idle timeout: 408, and the connection
// closes (the rest of the body would be read as a request).
TEST_F(H1ProxyTest, ARequestBodyThatStallsGets408AfterTheStreamIdleTimeout) {
  Upstream up;
  H1Proxy::Options o;
  o.stream_idle_timeout_ms = 200;
  lib::UniqueFd c = Connect(up.address(), o);
  const auto sent = std::chrono::steady_clock::now();
  Send(c.get(), "POST /upload HTTP/1.1\r\nHost: s\r\nContent-Length: 100\r\n\r\n0123456789");
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  EXPECT_EQ(m.heads[0].status, 408);
  EXPECT_EQ(m.heads[0].Header("x-shunt-error"), "request-idle-timeout");
  EXPECT_FALSE(m.heads[0].keep_alive);
  pollfd p{c.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 2000), 1) << "the proxy closes the connection";
  char byte;
  EXPECT_EQ(recv(c.get(), &byte, 1, 0), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(200))
      << "not before the timeout";
}

// An upstream that takes the whole request and says nothing: 504 once
// nothing has moved for the stream idle timeout (no route timeout set),
// and the connection serves the next request.
TEST_F(H1ProxyTest, AnUpstreamThatSaysNothingGets504AfterTheStreamIdleTimeout) {
  Upstream up;
  H1Proxy::Options o;
  o.stream_idle_timeout_ms = 100;
  lib::UniqueFd c = Connect(up.address(), o);
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  Send(c.get(), "GET /slow HTTP/1.1\r\nHost: s\r\n\r\n");  // 300 ms of silence
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  EXPECT_EQ(m.heads[0].status, 504);
  EXPECT_EQ(m.heads[0].Header("x-shunt-error"), "upstream-idle-timeout");
  Send(c.get(), "GET /fast HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 2));
  EXPECT_EQ(m.heads[1].status, 200);
  EXPECT_EQ(m.bodies[1], "GET /fast 0");
}

TEST_F(H1ProxyTest, ASlowUpstreamGets504AndTheConnectionGoesOn) {
  Upstream up;
  H1Proxy::Options o;
  o.response_timeout_ms = 100;
  lib::UniqueFd c = Connect(up.address(), o);
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  Send(c.get(), "GET /slow HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1));
  EXPECT_EQ(m.heads[0].status, 504);
  EXPECT_EQ(m.heads[0].Header("x-shunt-error"), "upstream-timeout");
  EXPECT_TRUE(m.heads[0].keep_alive);
  Send(c.get(), "GET /fast HTTP/1.1\r\nHost: s\r\n\r\n");
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 2));
  EXPECT_EQ(m.heads[1].status, 200);
  EXPECT_EQ(m.bodies[1], "GET /fast 0") << "not the slow request's late answer";
}

// h2c would turn the connection into HTTP/2 streams no route judges: the
// proxy forwards the request without its Upgrade, the answer comes over
// HTTP/1.1, and the connection ends with it (as after any upgrade request
// that was not switched).
TEST_F(H1ProxyTest, AnH2cUpgradeIsDeclinedAndTheRequestIsAnsweredOverHttp1) {
  Upstream up;
  lib::UniqueFd c = Connect(up.address());
  Messages m;
  H1Parser responses(H1Parser::Kind::kResponse, {}, &m);
  Send(c.get(),
       "GET /books HTTP/1.1\r\nHost: shop\r\nConnection: Upgrade, HTTP2-Settings\r\n"
       "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n");
  bool closed = false;
  ASSERT_TRUE(ReadMessages(c.get(), responses, m, 1, &closed));
  EXPECT_EQ(m.heads[0].status, 200);
  EXPECT_EQ(m.bodies[0], "GET /books 0");
  ASSERT_EQ(up.seen().size(), 1u);
  const H1Head sent = up.seen()[0];  // a copy: seen() returns a new vector
  EXPECT_FALSE(sent.upgrade);
  EXPECT_EQ(sent.Header("upgrade"), "");
  EXPECT_EQ(sent.Header("http2-settings"), "");
  // The connection ends after the answer.
  char b;
  pollfd p{c.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 5000), 1);
  EXPECT_EQ(recv(c.get(), &b, 1, 0), 0);
}

}  // namespace
}  // namespace shunt::proxy::http
