// The agent's HTTP layer: routes, where handlers run, and what a bad
// client cannot do to it (deadlines, the connection cap, bounded heads).
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>
#include <vector>

#include "agent/http/client.h"
#include "agent/http/server.h"
#include "agent/lib/unique_fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::http {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Runs the LoopQueue's work on a thread of its own, as the agent's loop does.
class LoopThread {
 public:
  explicit LoopThread(LoopQueue* q) : q_(q), thread_([this] { Run(); }) {}
  ~LoopThread() {
    stop_ = true;
    thread_.join();
  }
  void Pause(bool paused) { paused_ = paused; }

 private:
  void Run() {
    while (!stop_) {
      pollfd p{q_->fd(), POLLIN, 0};
      poll(&p, 1, 10);
      if (!paused_) q_->RunPending();
    }
  }
  LoopQueue* q_;
  std::atomic<bool> stop_{false}, paused_{false};
  std::thread thread_;
};

lib::UniqueFd ConnectUnix(const std::string& path) {
  lib::UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return lib::UniqueFd();
  return fd;
}

// True once the peer closed `fd` (read returns 0 or an error), within `ms`.
bool ClosedWithin(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, ms) != 1) return false;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return true;
    if (poll(&p, 1, ms) != 1) return false;
  }
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/shunt_http_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    socket_ = dir_ + "/api.sock";
    router_.Add("GET", "/v1/ping", [](const Request&) { return Json({{"ok", true}}); });
    router_.Add("GET", "/v1/echo", [](const Request& r) {
      return Json({{"q", r.query.count("q") ? r.query.at("q") : ""}, {"thread", "loop"}});
    });
    router_.Add("POST", "/v1/body", [](const Request& r) { return Text(200, r.body); });
    router_.Add("GET", "/v1/throws",
                [](const Request&) -> Response { throw std::runtime_error("boom"); });
    router_.Add(
        "GET", "/healthz", [](const Request&) { return Text(200, "ok\n"); }, RunsOn::kServer);
    auto q = LoopQueue::Create();
    ASSERT_TRUE(q.ok()) << q.status();
    queue_ = *std::move(q);
  }
  void TearDown() override {
    server_.reset();
    loop_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Start(ServerOptions opts = {}) {
    auto s = Server::Start(opts,
                           {{Listener::Kind::kUnix, socket_, &router_},
                            {Listener::Kind::kTcp, "127.0.0.1:0", &router_}},
                           queue_.get());
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    loop_ = std::make_unique<LoopThread>(queue_.get());
  }

  std::string dir_, socket_;
  Router router_;
  std::unique_ptr<LoopQueue> queue_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<LoopThread> loop_;
};

TEST_F(HttpServerTest, RoutesAnswerAndUnknownPathsAndMethodsAreNamed) {
  Start();
  auto r = UnixRequest(socket_, "GET", "/v1/echo?q=a%2Fb+c");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(r->body)["q"], "a/b c");
  r = UnixRequest(socket_, "POST", "/v1/body", R"({"x":1})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->body, R"({"x":1})");
  r = UnixRequest(socket_, "GET", "/nope");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 404);
  EXPECT_THAT(r->body, HasSubstr("no such path: /nope"));
  r = UnixRequest(socket_, "POST", "/v1/ping");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 405);
}

TEST_F(HttpServerTest, AThrowingHandlerIs500AndTheServerGoesOn) {
  Start();
  auto r = UnixRequest(socket_, "GET", "/v1/throws");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 500);
  EXPECT_THAT(r->body, HasSubstr("boom"));
  EXPECT_EQ(server_->stats().errors.load(), 1u);
  EXPECT_EQ(UnixRequest(socket_, "GET", "/v1/ping")->status, 200);
}

TEST_F(HttpServerTest, AStuckLoopGets503ButServerRoutesStillAnswer) {
  ServerOptions opts;
  opts.loop_timeout = 200ms;
  Start(opts);
  loop_->Pause(true);
  auto r = UnixRequest(socket_, "GET", "/v1/ping");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(r->body, HasSubstr("did not answer within 200 ms"));
  r = UnixRequest(socket_, "GET", "/healthz");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200) << "kServer routes do not need the loop";
  loop_->Pause(false);
  EXPECT_EQ(UnixRequest(socket_, "GET", "/v1/ping")->status, 200);
}

TEST_F(HttpServerTest, HalfARequestIsCutOffAtTheReadDeadline) {
  ServerOptions opts;
  opts.read_timeout = 200ms;
  Start(opts);
  lib::UniqueFd c = ConnectUnix(socket_);
  ASSERT_TRUE(c.valid());
  const char partial[] = "GET /v1/ping HTTP/1.1\r\nHost: x\r\n";  // no blank line, ever
  ASSERT_EQ(write(c.get(), partial, sizeof(partial) - 1),
            static_cast<ssize_t>(sizeof(partial) - 1));
  EXPECT_TRUE(ClosedWithin(c.get(), 3000));
  // The client can see the close before the server's coroutine counts it.
  for (int i = 0; i < 300 && server_->stats().timeouts.load() == 0; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_GE(server_->stats().timeouts.load(), 1u);
}

TEST_F(HttpServerTest, IdleKeepAliveConnectionsAreClosed) {
  ServerOptions opts;
  opts.read_timeout = 200ms;
  opts.idle_timeout = 200ms;
  Start(opts);
  lib::UniqueFd c = ConnectUnix(socket_);
  ASSERT_TRUE(c.valid());
  EXPECT_TRUE(ClosedWithin(c.get(), 3000)) << "a connection that never sends is closed";
}

TEST_F(HttpServerTest, ThousandsOfIdleConnectionsDoNotStarveTheApi) {
  ServerOptions opts;
  opts.max_connections = 64;
  Start(opts);
  std::vector<lib::UniqueFd> idle;
  for (int i = 0; i < 1000; ++i) {
    lib::UniqueFd c = ConnectUnix(socket_);
    if (c.valid()) idle.push_back(std::move(c));
  }
  // Past the cap, the oldest waiting connection makes room for each new
  // one: a client that asks is answered at once, and memory stays bounded.
  auto r = UnixRequest(socket_, "GET", "/v1/ping", "", 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_GT(server_->stats().evicted.load(), 900u);
  EXPECT_LE(server_->stats().open.load(), 65u);
}

TEST_F(HttpServerTest, AClientThatNeverReadsIsCutOffAndOthersAreServed) {
  ServerOptions opts;
  opts.write_timeout = 300ms;
  router_.Add("GET", "/v1/big",
              [](const Request&) { return Text(200, std::string(64 << 20, 'x')); });
  Start(opts);
  lib::UniqueFd c = ConnectUnix(socket_);
  ASSERT_TRUE(c.valid());
  const char req[] = "GET /v1/big HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(c.get(), req, sizeof(req) - 1), static_cast<ssize_t>(sizeof(req) - 1));
  // It never reads; meanwhile another client is answered.
  auto r = UnixRequest(socket_, "GET", "/v1/ping");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  for (int i = 0; i < 100 && server_->stats().timeouts.load() == 0; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_GE(server_->stats().timeouts.load(), 1u) << "the stuck write hit its deadline";
}

TEST_F(HttpServerTest, OversizedHeadsAnd4xx) {
  ServerOptions opts;
  opts.max_header_bytes = 1024;
  Start(opts);
  lib::UniqueFd c = ConnectUnix(socket_);
  ASSERT_TRUE(c.valid());
  std::string req = "GET /v1/ping HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n";
  ASSERT_EQ(write(c.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  char buf[256] = {};
  pollfd p{c.get(), POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 3000), 1);
  ASSERT_GT(read(c.get(), buf, sizeof(buf) - 1), 0);
  EXPECT_THAT(std::string(buf), HasSubstr("HTTP/1.1 431"));
}

TEST_F(HttpServerTest, ASecondServerOnALiveSocketIsRefused) {
  Start();
  auto again = Server::Start({}, {{Listener::Kind::kUnix, socket_, &router_}}, queue_.get());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.status().message(), HasSubstr("another agent is listening there"));
}

TEST(ParseListenAddressTest, Forms) {
  EXPECT_EQ(ParseListenAddress("0.0.0.0:9464")->port, 9464);
  EXPECT_EQ(ParseListenAddress("[::1]:80")->host, "::1");
  EXPECT_EQ(ParseListenAddress("9464").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseListenAddress("localhost:1").status().message(),
              HasSubstr("is not an IP address"));
}

TEST(ClientTest, NoAgentIsUnavailableNamingTheSocket) {
  auto r = UnixRequest("/tmp/shunt-no-such-socket.sock", "GET", "/v1/ping");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("/tmp/shunt-no-such-socket.sock"));
}

}  // namespace
}  // namespace shunt::http
