// H1ServerSession and H1ClientSession (proxy/http/h1_session.h): HTTP/1.1
// connections seen as streams, for H2Proxy where a pod and its upstream
// speak different HTTP versions. The bytes on the wire are checked as a
// client or a server would read them, and what H2Proxy sees as HTTP/2
// messages (pseudo-headers, no hop-by-hop headers).
#include "proxy/http/h1_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

namespace shunt::proxy::http {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

struct H1Seen {
  H2Headers head, interim;
  std::string body;
  bool head_end = false, end = false;
  int closed = -1;
};

// A session with every event recorded, and what it wrote taken out.
template <typename Session>
struct H1Harness {
  std::map<int32_t, H1Seen> seen;
  std::vector<int32_t> order;  // heads and closes as they came: +id head, -id close
  bool consume = true;
  std::vector<std::pair<int, std::string>> rejected;  // on_rejected's
  std::unique_ptr<Session> s;
  explicit H1Harness(H1SessionLimits limits = {}) {
    MessageSession::Events ev;
    ev.on_head = [this](int32_t id, H2Headers& h, bool end) {
      const bool interim = !h.empty() && h[0].first == ":status" && h[0].second[0] == '1';
      (interim ? seen[id].interim : seen[id].head) = h;
      if (!interim) seen[id].head_end = end;
      order.push_back(id);
    };
    ev.on_data = [this](int32_t id, absl::string_view d) {
      seen[id].body.append(d.data(), d.size());
      if (consume) s->Consumed(id, d.size());
    };
    ev.on_end = [this](int32_t id) { seen[id].end = true; };
    ev.on_close = [this](int32_t id, uint32_t code) {
      seen[id].closed = static_cast<int>(code);
      order.push_back(-id);
    };
    ev.on_rejected = [this](int status, absl::string_view why) {
      rejected.emplace_back(status, std::string(why));
    };
    s = std::make_unique<Session>(limits, std::move(ev));
  }
  std::string Out() {
    ByteBuffer b;
    s->TakeOutput(&b);
    return std::string(b.view());
  }
};

TEST(H1ServerSessionTest, ARequestBecomesAnHttp2HeadAndTheAnswerIsFramedForHttp11) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET /books?page=2 HTTP/1.1\r\nHost: svc.demo:8080\r\nConnection: "
                           "keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: "
                           "trailers\r\nAccept: */*\r\n\r\n")
                  .ok());
  ASSERT_EQ(h.seen.count(1), 1u);
  EXPECT_THAT(h.seen[1].head,
              ElementsAre(Pair(":method", "GET"), Pair(":scheme", "http"),
                          Pair(":authority", "svc.demo:8080"), Pair(":path", "/books?page=2"),
                          Pair("te", "trailers"), Pair("accept", "*/*")));
  EXPECT_TRUE(h.seen[1].head_end);
  EXPECT_TRUE(h.seen[1].end);
  ASSERT_TRUE(
      h.s->SubmitResponse(1, {{":status", "200"}, {"content-type", "text/plain"}}, false).ok());
  EXPECT_EQ(h.s->Send(1, "hello"), 5u);
  h.s->End(1, {{"grpc-status", "0"}});
  EXPECT_EQ(h.Out(),
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\ngrpc-status: 0\r\n\r\n");
  EXPECT_EQ(h.seen[1].closed, 0);
  EXPECT_TRUE(h.s->alive());
}

TEST(H1ServerSessionTest, PipelinedRequestsWaitForTheAnswerBeforeThem) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
                           "GET /two HTTP/1.1\r\nHost: a\r\n\r\n")
                  .ok());
  EXPECT_THAT(h.order, ElementsAre(1));
  ASSERT_TRUE(h.s->SubmitResponse(1, {{":status", "204"}}, true).ok());
  const std::string first = h.Out();
  EXPECT_EQ(first, "HTTP/1.1 204 No Content\r\n\r\n");
  // The first closed, then the second read.
  EXPECT_THAT(h.order, ElementsAre(1, -1, 3));
  EXPECT_THAT(h.seen[3].head, Contains(Pair(":path", "/two")));
  ASSERT_TRUE(h.s->SubmitResponse(3, {{":status", "200"}}, true).ok());
  EXPECT_EQ(h.Out(), "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
}

TEST(H1ServerSessionTest, AChunkedUploadIsHeldBackUntilItsBytesArePassedOn) {
  H1Harness<H1ServerSession> h(H1SessionLimits{.window = 1000});
  h.consume = false;
  ASSERT_TRUE(
      h.s->Receive("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n").ok());
  EXPECT_FALSE(h.seen[1].head_end);
  EXPECT_THAT(h.seen[1].head, Not(Contains(Pair("transfer-encoding", "chunked"))));
  ASSERT_TRUE(h.s->Receive("4b0\r\n" + std::string(1200, 'x') + "\r\n").ok());
  EXPECT_EQ(h.seen[1].body.size(), 1200u);
  EXPECT_FALSE(h.s->wants_input());  // the socket is not read: the client waits
  h.s->Consumed(1, 1200);
  EXPECT_TRUE(h.s->wants_input());
  ASSERT_TRUE(h.s->Receive("0\r\n\r\n").ok());
  EXPECT_TRUE(h.seen[1].end);
}

TEST(H1ServerSessionTest, ASmugglingShapeGets400AndTheConnectionEnds) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                           "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                  .ok());
  EXPECT_TRUE(h.seen.empty());  // never reaches the upstream
  const std::string out = h.Out();
  EXPECT_THAT(out, StartsWith("HTTP/1.1 400 Bad Request\r\n"));
  EXPECT_THAT(out, HasSubstr("Connection: close"));
  EXPECT_FALSE(h.s->alive());
  // Reported once, for the request metrics, with the parser's reason.
  ASSERT_EQ(h.rejected.size(), 1u);
  EXPECT_EQ(h.rejected[0].first, 400);
  EXPECT_FALSE(h.rejected[0].second.empty());
}

TEST(H1ServerSessionTest, AHeadOverTheLimitGets431AndIsReported) {
  H1Harness<H1ServerSession> h(
      H1SessionLimits{.parser = {.max_head_bytes = 1024, .max_headers = 100}});
  ASSERT_TRUE(h.s->Receive(absl::StrCat("GET / HTTP/1.1\r\nHost: a\r\nX-Big: ",
                                        std::string(2048, 'x'), "\r\n\r\n"))
                  .ok());
  EXPECT_TRUE(h.seen.empty());
  EXPECT_THAT(h.Out(), StartsWith("HTTP/1.1 431 "));
  ASSERT_EQ(h.rejected.size(), 1u);
  EXPECT_EQ(h.rejected[0].first, 431);
}

TEST(H1ServerSessionTest, AnHttp10ClientGetsABodyOfUnknownLengthDelimitedByTheClose) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET / HTTP/1.0\r\n\r\n").ok());
  ASSERT_TRUE(h.s->SubmitResponse(1, {{":status", "200"}}, false).ok());
  h.s->Send(1, "all of it");
  h.s->End(1);
  EXPECT_EQ(h.Out(), "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of it");
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ServerSessionTest, ContinueIsPassedAsAnInterimResponse) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("PUT /f HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: "
                           "100-continue\r\n\r\n")
                  .ok());
  EXPECT_THAT(h.seen[1].head, Contains(Pair("expect", "100-continue")));
  EXPECT_THAT(h.seen[1].head, Contains(Pair("content-length", "3")));
  ASSERT_TRUE(h.s->SubmitInterim(1, {{":status", "100"}}).ok());
  EXPECT_EQ(h.Out(), "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(h.s->Receive("abc").ok());
  EXPECT_EQ(h.seen[1].body, "abc");
  EXPECT_TRUE(h.seen[1].end);
}

TEST(H1ServerSessionTest, AnUpgradeKeepsItsUpgradeHeaderForTheProxyAndEndsTheConnection) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: "
                           "websocket\r\n\r\n\x81\x05hello")
                  .ok());
  EXPECT_THAT(h.seen[1].head, Contains(Pair("upgrade", "websocket")));
  EXPECT_TRUE(h.seen[1].head_end);
  ASSERT_TRUE(h.s->SubmitResponse(1, {{":status", "501"}, {"content-length", "0"}}, true).ok());
  EXPECT_EQ(h.Out(),
            "HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ServerSessionTest, AResetCutsTheConnection) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET / HTTP/1.1\r\nHost: a\r\n\r\n").ok());
  ASSERT_TRUE(h.s->SubmitResponse(1, {{":status", "200"}, {"content-length", "100"}}, false).ok());
  h.s->Send(1, "part");
  h.s->Reset(1, 2);
  h.Out();
  EXPECT_EQ(h.seen[1].closed, 2);
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ServerSessionTest, AClientThatHalfClosesAfterItsRequestIsStillAnswered) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET /a HTTP/1.1\r\nHost: a\r\n\r\n").ok());
  h.s->ReceiveEof();  // printf '...' | nc -N
  h.Out();
  EXPECT_TRUE(h.s->alive());
  EXPECT_FALSE(h.s->wants_input());
  ASSERT_TRUE(h.s->SubmitResponse(1, {{":status", "200"}, {"content-length", "2"}}, false).ok());
  h.s->Send(1, "ok");
  h.s->End(1);
  EXPECT_EQ(h.Out(), "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
  EXPECT_EQ(h.seen[1].closed, 0);
  h.Out();
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ServerSessionTest, AClientThatClosesInTheMiddleOfItsRequestEndsIt) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345").ok());
  h.s->ReceiveEof();
  h.Out();
  EXPECT_EQ(h.seen[1].closed, 1);  // PROTOCOL_ERROR: its upstream stream is reset
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ServerSessionTest, AnUpgradeToH2cIsDeclinedAndTheRequestGoesOn) {
  H1Harness<H1ServerSession> h;
  ASSERT_TRUE(h.s->Receive("GET /a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, "
                           "HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQ\r\n\r\n")
                  .ok());
  EXPECT_THAT(h.seen[1].head, ElementsAre(Pair(":method", "GET"), Pair(":scheme", "http"),
                                          Pair(":authority", "a"), Pair(":path", "/a")));
}

TEST(H1ClientSessionTest, AnHttp2RequestGoesAsHttp11AndItsResponseComesBackAsHttp2) {
  H1Harness<H1ClientSession> h;
  auto id = h.s->SubmitRequest({{":method", "POST"},
                                {":scheme", "http"},
                                {":authority", "svc:8080"},
                                {":path", "/orders"},
                                {"x-a", "b"}},
                               false);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(h.s->can_open());  // one at a time
  EXPECT_EQ(h.s->Send(*id, "abc"), 3u);
  h.s->End(*id);
  EXPECT_EQ(h.Out(),
            "POST /orders HTTP/1.1\r\nhost: svc:8080\r\nx-a: b\r\ntransfer-encoding: "
            "chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 201 Created\r\nConnection: keep-alive\r\nKeep-Alive: "
                           "timeout=5\r\nContent-Length: 2\r\nX-Id: 7\r\n\r\nok")
                  .ok());
  EXPECT_THAT(h.seen[*id].head,
              ElementsAre(Pair(":status", "201"), Pair("content-length", "2"), Pair("x-id", "7")));
  EXPECT_EQ(h.seen[*id].body, "ok");
  EXPECT_TRUE(h.seen[*id].end);
  EXPECT_EQ(h.seen[*id].closed, 0);
  EXPECT_TRUE(h.s->can_open());  // kept alive for the next request
  auto next = h.s->SubmitRequest(
      {{":method", "GET"}, {":scheme", "http"}, {":authority", "svc"}, {":path", "/"}}, true);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, 3);
  EXPECT_EQ(h.Out(), "GET / HTTP/1.1\r\nhost: svc\r\n\r\n");
}

TEST(H1ClientSessionTest, ABodilessPostSaysItsLengthAndAKnownLengthIsNotChunked) {
  H1Harness<H1ClientSession> h;
  auto a = h.s->SubmitRequest({{":method", "POST"}, {":path", "/p"}}, true);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(h.Out(), "POST /p HTTP/1.1\r\ncontent-length: 0\r\n\r\n");
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 204 No Content\r\n\r\n").ok());
  auto b =
      h.s->SubmitRequest({{":method", "PUT"}, {":path", "/p"}, {"content-length", "4"}}, false);
  ASSERT_TRUE(b.ok());
  h.s->Send(*b, "data");
  h.s->End(*b);
  EXPECT_EQ(h.Out(), "PUT /p HTTP/1.1\r\ncontent-length: 4\r\n\r\ndata");
}

TEST(H1ClientSessionTest, AResponseDelimitedByTheCloseEndsAtTheEof) {
  H1Harness<H1ClientSession> h;
  auto id = h.s->SubmitRequest({{":method", "GET"}, {":path", "/"}}, true);
  ASSERT_TRUE(id.ok());
  h.Out();
  ASSERT_TRUE(h.s->Receive("HTTP/1.0 200 OK\r\n\r\nfirst ").ok());
  ASSERT_TRUE(h.s->Receive("second").ok());
  EXPECT_FALSE(h.seen[*id].end);
  h.s->ReceiveEof();
  EXPECT_EQ(h.seen[*id].body, "first second");
  EXPECT_TRUE(h.seen[*id].end);
  EXPECT_EQ(h.seen[*id].closed, 0);
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ClientSessionTest, AnInterimResponseComesBeforeTheFinalOne) {
  H1Harness<H1ClientSession> h;
  auto id = h.s->SubmitRequest(
      {{":method", "PUT"}, {":path", "/"}, {"expect", "100-continue"}, {"content-length", "1"}},
      false);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 100 Continue\r\n\r\n").ok());
  EXPECT_THAT(h.seen[*id].interim, ElementsAre(Pair(":status", "100")));
  EXPECT_TRUE(h.seen[*id].head.empty());
  h.s->Send(*id, "x");
  h.s->End(*id);
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").ok());
  EXPECT_THAT(h.seen[*id].head, Contains(Pair(":status", "200")));
  EXPECT_TRUE(h.seen[*id].head_end);
  EXPECT_EQ(h.seen[*id].closed, 0);
}

TEST(H1ClientSessionTest, AnAnswerBeforeTheWholeRequestEndsTheConnectionAfterIt) {
  H1Harness<H1ClientSession> h;
  auto id =
      h.s->SubmitRequest({{":method", "POST"}, {":path", "/"}, {"content-length", "10"}}, false);
  ASSERT_TRUE(id.ok());
  h.s->Send(*id, "12345");
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n").ok());
  EXPECT_EQ(h.seen[*id].closed, 0);
  EXPECT_EQ(h.s->Send(*id, "67890"), 0u);
  EXPECT_FALSE(h.s->can_open());
  EXPECT_FALSE(h.s->alive());
}

TEST(H1ClientSessionTest, AResponseToNothingAskedOrAnUnaskedSwitchIsAnError) {
  H1Harness<H1ClientSession> idle;
  EXPECT_FALSE(idle.s->Receive("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").ok());
  EXPECT_FALSE(idle.s->alive());
  H1Harness<H1ClientSession> h;
  auto id = h.s->SubmitRequest({{":method", "GET"}, {":path", "/"}}, true);
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(
      h.s->Receive("HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n")
          .ok());
  EXPECT_EQ(h.seen[*id].closed, 1);  // PROTOCOL_ERROR
}

TEST(H1ClientSessionTest, CookieCrumbsGoAsOneLine) {
  H1Harness<H1ClientSession> h;
  auto id = h.s->SubmitRequest(
      {{":method", "GET"}, {":path", "/"}, {"cookie", "a=1"}, {"x", "y"}, {"cookie", "b=2"}}, true);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(h.Out(), "GET / HTTP/1.1\r\nx: y\r\ncookie: a=1; b=2\r\n\r\n");
}

TEST(H1ClientSessionTest, HeadAnd304AnswersEndAtTheirHeadWhateverTheirLengthSays) {
  H1Harness<H1ClientSession> h;
  auto head = h.s->SubmitRequest({{":method", "HEAD"}, {":path", "/big"}}, true);
  ASSERT_TRUE(head.ok());
  ASSERT_TRUE(h.s->Receive("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n").ok());
  EXPECT_TRUE(h.seen[*head].head_end);
  EXPECT_EQ(h.seen[*head].closed, 0);
  EXPECT_TRUE(h.s->can_open());
  auto get =
      h.s->SubmitRequest({{":method", "GET"}, {":path", "/big"}, {"if-none-match", "\"x\""}}, true);
  ASSERT_TRUE(get.ok());
  ASSERT_TRUE(
      h.s->Receive("HTTP/1.1 304 Not Modified\r\nContent-Length: 5000\r\nETag: \"x\"\r\n\r\n")
          .ok());
  EXPECT_TRUE(h.seen[*get].head_end);
  EXPECT_EQ(h.seen[*get].closed, 0);
  EXPECT_TRUE(h.s->can_open());  // the connection goes on
}

// What the client session writes, the server session reads back as the
// same HTTP/2 message (the two mappings are each other's inverse).
TEST(H1SessionsTest, ARequestMappedToHttp11AndBackIsTheSameRequest) {
  H1Harness<H1ClientSession> c;
  H1Harness<H1ServerSession> s;
  const H2Headers request = {{":method", "PATCH"}, {":scheme", "http"}, {":authority", "svc:1"},
                             {":path", "/x?y=1"},  {"x-trace", "abc"},  {"te", "trailers"}};
  auto id = c.s->SubmitRequest(request, false);
  ASSERT_TRUE(id.ok());
  c.s->Send(*id, "payload");
  c.s->End(*id);
  ASSERT_TRUE(s.s->Receive(c.Out()).ok());
  EXPECT_EQ(s.seen[1].head, request);
  EXPECT_EQ(s.seen[1].body, "payload");
  EXPECT_TRUE(s.seen[1].end);
  ASSERT_TRUE(s.s->SubmitResponse(1, {{":status", "200"}, {"x-r", "1"}}, false).ok());
  s.s->Send(1, "answer");
  s.s->End(1);
  ASSERT_TRUE(c.s->Receive(s.Out()).ok());
  EXPECT_THAT(c.seen[*id].head, ElementsAre(Pair(":status", "200"), Pair("x-r", "1")));
  EXPECT_EQ(c.seen[*id].body, "answer");
  EXPECT_EQ(c.seen[*id].closed, 0);
}

}  // namespace
}  // namespace shunt::proxy::http
