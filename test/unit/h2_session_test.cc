// H2Session (proxy/http/h2_session.h): two sessions back to back, a client
// and a server, bytes moved between them by hand. What crosses is what
// each side's owner sees: heads with their pseudo-headers, bodies, trailers,
// ends; and a stream's window opens only as its bytes are consumed.
#include "proxy/http/h2_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace shunt::proxy::http {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Pair;

struct Seen {
  H2Headers head, trailers;
  std::string body;
  bool end = false;
  int closed = -1;  // the close's error code, once closed
};

class H2SessionTest : public ::testing::Test {
 protected:
  void Make(const H2Limits& server_limits = {}) {
    H2Session::Events c;
    c.on_head = [this](int32_t id, H2Headers& h, bool) { client_seen_[id].head = h; };
    c.on_data = [this](int32_t id, absl::string_view d) {
      client_seen_[id].body.append(d.data(), d.size());
      client_->Consumed(id, d.size());
    };
    c.on_trailers = [this](int32_t id, H2Headers& t) { client_seen_[id].trailers = t; };
    c.on_end = [this](int32_t id) { client_seen_[id].end = true; };
    c.on_close = [this](int32_t id, uint32_t code) { client_seen_[id].closed = code; };
    H2Session::Events s;
    s.on_head = [this](int32_t id, H2Headers& h, bool) { server_seen_[id].head = h; };
    s.on_data = [this](int32_t id, absl::string_view d) {
      server_seen_[id].body.append(d.data(), d.size());
      if (server_consumes_) server_->Consumed(id, d.size());
    };
    s.on_trailers = [this](int32_t id, H2Headers& t) { server_seen_[id].trailers = t; };
    s.on_end = [this](int32_t id) { server_seen_[id].end = true; };
    s.on_close = [this](int32_t id, uint32_t code) { server_seen_[id].closed = code; };
    auto cs = H2Session::Create(H2Session::Role::kClient, {}, std::move(c));
    auto ss = H2Session::Create(H2Session::Role::kServer, server_limits, std::move(s));
    ASSERT_TRUE(cs.ok() && ss.ok());
    client_ = std::move(*cs);
    server_ = std::move(*ss);
  }
  // Moves bytes both ways until neither side has anything to say.
  void Exchange() {
    for (int i = 0; i < 100; ++i) {
      ByteBuffer a, b;
      client_->TakeOutput(&a);
      server_->TakeOutput(&b);
      if (a.empty() && b.empty()) return;
      ASSERT_TRUE(server_->Receive(a.view()).ok());
      ASSERT_TRUE(client_->Receive(b.view()).ok());
    }
  }
  static H2Headers Get(const std::string& path) {
    return {{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", path}};
  }

  std::unique_ptr<H2Session> client_, server_;
  std::map<int32_t, Seen> client_seen_, server_seen_;
  bool server_consumes_ = true;
};

TEST_F(H2SessionTest, ARequestAndItsResponseCrossWithBodiesAndTrailers) {
  Make();
  H2Headers post = {{":method", "POST"},      {":scheme", "http"}, {":authority", "svc:80"},
                    {":path", "/upload?x=1"}, {"te", "trailers"},  {"x-user", "beta"}};
  auto id = client_->SubmitRequest(post, /*end=*/false);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(client_->Send(*id, "hello "), 6u);
  EXPECT_EQ(client_->Send(*id, "world"), 5u);
  client_->End(*id, {{"x-checksum", "abc"}});
  Exchange();
  const Seen& req = server_seen_[*id];
  EXPECT_THAT(req.head, ElementsAre(Pair(":method", "POST"), Pair(":scheme", "http"),
                                    Pair(":authority", "svc:80"), Pair(":path", "/upload?x=1"),
                                    Pair("te", "trailers"), Pair("x-user", "beta")));
  EXPECT_EQ(req.body, "hello world");
  EXPECT_THAT(req.trailers, ElementsAre(Pair("x-checksum", "abc")));
  EXPECT_TRUE(req.end);

  ASSERT_TRUE(
      server_->SubmitResponse(*id, {{":status", "200"}, {"grpc-encoding", "identity"}}, false)
          .ok());
  EXPECT_EQ(server_->Send(*id, "done"), 4u);
  server_->End(*id, {{"grpc-status", "0"}});
  Exchange();
  const Seen& resp = client_seen_[*id];
  EXPECT_THAT(resp.head, Contains(Pair(":status", "200")));
  EXPECT_EQ(resp.body, "done");
  EXPECT_THAT(resp.trailers, ElementsAre(Pair("grpc-status", "0")));
  EXPECT_TRUE(resp.end);
  EXPECT_EQ(resp.closed, 0);
  EXPECT_EQ(server_seen_[*id].closed, 0);
}

TEST_F(H2SessionTest, AStreamsWindowOpensOnlyAsItsBytesAreConsumedAndOthersGoOn) {
  H2Limits small;
  small.stream_window = 65535;
  small.session_window = 1 << 20;
  Make(small);
  server_consumes_ = false;  // the server's reader is stuck
  auto slow = client_->SubmitRequest(
      {{":method", "POST"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/slow"}}, false);
  ASSERT_TRUE(slow.ok());
  const std::string chunk(200000, 'x');
  size_t queued = client_->Send(*slow, chunk);
  EXPECT_GT(queued, 0u);
  Exchange();
  // No more than the stream's window crossed.
  EXPECT_EQ(server_seen_[*slow].body.size(), 65535u);
  // Another stream is not held up by it.
  auto quick = client_->SubmitRequest(Get("/quick"), true);
  ASSERT_TRUE(quick.ok());
  Exchange();
  EXPECT_TRUE(server_seen_[*quick].end);
  // The reader takes what it has: as many more bytes may come.
  server_->Consumed(*slow, 65535);
  Exchange();
  EXPECT_EQ(server_seen_[*slow].body.size(), std::min<size_t>(queued, 2 * 65535));
}

TEST_F(H2SessionTest, AResetEndsOnlyItsStream) {
  Make();
  auto a = client_->SubmitRequest(Get("/a"), true);
  auto b = client_->SubmitRequest(Get("/b"), true);
  ASSERT_TRUE(a.ok() && b.ok());
  Exchange();
  server_->Reset(*a, NGHTTP2_REFUSED_STREAM);
  ASSERT_TRUE(server_->SubmitResponse(*b, {{":status", "204"}}, true).ok());
  Exchange();
  EXPECT_EQ(client_seen_[*a].closed, NGHTTP2_REFUSED_STREAM);
  EXPECT_EQ(client_seen_[*b].closed, 0);
  EXPECT_THAT(client_seen_[*b].head, Contains(Pair(":status", "204")));
  EXPECT_TRUE(client_->alive());
}

TEST_F(H2SessionTest, GarbageEndsTheSessionAndEveryStream) {
  Make();
  EXPECT_FALSE(server_->Receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok());
  EXPECT_FALSE(server_->Receive("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").ok());
  ByteBuffer out;
  server_->TakeOutput(&out);
  EXPECT_FALSE(server_->alive());
}

}  // namespace
}  // namespace shunt::proxy::http
