#include "proxy/http/h1_parser.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/h1_messages.h"

namespace shunt::proxy::http {
namespace {

using ::testing::HasSubstr;

using Recorder = test_util::RecordedMessages;

// Feeds all of `wire`, resuming after each message; the parser's error if any.
absl::Status FeedAll(H1Parser& p, absl::string_view wire, size_t step = 0) {
  while (!wire.empty()) {
    absl::string_view piece = step ? wire.substr(0, step) : wire;
    auto n = p.Feed(piece);
    if (!n.ok()) return n.status();
    wire.remove_prefix(*n);
    if (p.paused()) p.Resume();
    if (*n == 0 && !p.paused()) return absl::InternalError("stuck");
  }
  return absl::OkStatus();
}

TEST(H1ParserTest, ARequestWithAChunkedBodyArrivesDechunked) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kRequest, {}, &r);
  const std::string wire =
      "POST /upload?x=1 HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n"
      "X-Trace:  abc  \r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
  // Byte by byte: every piece boundary a socket could make.
  ASSERT_TRUE(FeedAll(p, wire, 1).ok());
  ASSERT_EQ(r.heads.size(), 1u);
  const H1Head& h = r.heads[0];
  EXPECT_EQ(h.method, "POST");
  EXPECT_EQ(h.target, "/upload?x=1");
  EXPECT_TRUE(h.chunked);
  EXPECT_EQ(h.content_length, -1);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_EQ(h.Header("host"), "shop");
  EXPECT_EQ(h.Header("x-trace"), "abc") << "optional whitespace trimmed";
  EXPECT_EQ(r.bodies[0], "hello world");
  EXPECT_EQ(r.ends, 1);
  EXPECT_TRUE(p.idle());
}

TEST(H1ParserTest, PipelinedRequestsComeOneAtATime) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kRequest, {}, &r);
  const std::string first = "GET /a HTTP/1.1\r\nHost: s\r\n\r\n";
  const std::string second = "POST /b HTTP/1.1\r\nHost: s\r\nContent-Length: 3\r\n\r\nabc";
  auto n = p.Feed(first + second);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, first.size()) << "stops after the first message";
  EXPECT_TRUE(p.paused());
  EXPECT_EQ(r.ends, 1);
  auto nothing = p.Feed(second);
  ASSERT_TRUE(nothing.ok());
  EXPECT_EQ(*nothing, 0u) << "nothing until Resume";
  p.Resume();
  auto rest = p.Feed(second);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, second.size());
  ASSERT_EQ(r.heads.size(), 2u);
  EXPECT_EQ(r.heads[1].target, "/b");
  EXPECT_EQ(r.heads[1].content_length, 3);
  EXPECT_EQ(r.bodies[1], "abc");
}

TEST(H1ParserTest, SmugglingShapesAreRefusedWith400) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
       "0\r\n\r\n",
       "Content-Length"},
      {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
       "Content-Length"},
      {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "transfer"},
      {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace in a header name"},
      {"GET / HTTP/1.1\r\nHost: a\r\nX-Fold: one\r\n two\r\n\r\n",
       "folded line in header 'X-Fold'"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", "content"},
      {"GET / HTTP/1.1\r\nX: a\x01"
       "b\r\n\r\n",
       ""},
      {"G@T / HTTP/1.1\r\n\r\n", "method"},
  };
  for (const auto& [wire, why] : cases) {
    Recorder r;
    H1Parser p(H1Parser::Kind::kRequest, {}, &r);
    absl::Status st = FeedAll(p, wire);
    EXPECT_FALSE(st.ok()) << wire;
    EXPECT_EQ(p.error_status(), 400) << wire;
    EXPECT_THAT(absl::AsciiStrToLower(std::string(st.message())),
                HasSubstr(absl::AsciiStrToLower(why)))
        << wire;
    EXPECT_FALSE(p.Feed("GET / HTTP/1.1\r\n\r\n").ok()) << "nothing after an error";
  }
}

TEST(H1ParserTest, AnotherVersionThan1xIsAnswered505) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kRequest, {}, &r);
  absl::Status st = FeedAll(p, "GET / HTTP/9.9\r\nHost: a\r\n\r\n");
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(p.error_status(), 505);
  EXPECT_THAT(std::string(st.message()), HasSubstr("unsupported HTTP version 9.9"));
  EXPECT_TRUE(r.heads.empty());
}

TEST(H1ParserTest, AFoldedLookingSplitIsNotAFold) {
  // A value cut by the end of a read is one value, whatever the cut.
  Recorder r;
  H1Parser p(H1Parser::Kind::kRequest, {}, &r);
  ASSERT_TRUE(p.Feed("GET / HTTP/1.1\r\nX-A: one").ok());
  ASSERT_TRUE(p.Feed(" two\r\n\r\n").ok());
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_EQ(r.heads[0].Header("x-a"), "one two");
}

TEST(H1ParserTest, HeaderLimitsAnswer431) {
  {
    Recorder r;
    H1Parser p(H1Parser::Kind::kRequest, {.max_head_bytes = 1024, .max_headers = 100}, &r);
    const std::string wire = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n";
    absl::Status st = FeedAll(p, wire);
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(p.error_status(), 431);
    EXPECT_THAT(std::string(st.message()), HasSubstr("too large"));
  }
  {
    Recorder r;
    H1Parser p(H1Parser::Kind::kRequest, {.max_head_bytes = 65536, .max_headers = 10}, &r);
    std::string wire = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 11; ++i) wire += "X-" + std::to_string(i) + ": v\r\n";
    absl::Status st = FeedAll(p, wire + "\r\n");
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(p.error_status(), 431);
    EXPECT_THAT(std::string(st.message()), HasSubstr("more than 10 headers"));
  }
}

TEST(H1ParserTest, ResponsesToHeadHaveNoBodyAndCloseDelimitedOnesEndAtEof) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kResponse, {}, &r);
  p.ExpectNoBody();
  ASSERT_TRUE(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n").ok());
  ASSERT_EQ(r.ends, 1);
  EXPECT_EQ(r.heads[0].status, 200);
  EXPECT_EQ(r.heads[0].content_length, 100);
  EXPECT_EQ(r.bodies[0], "");
  // The next response, delimited by the connection's end.
  ASSERT_TRUE(FeedAll(p, "HTTP/1.0 200 OK\r\n\r\nall of it").ok());
  EXPECT_EQ(r.ends, 1);
  ASSERT_TRUE(p.FeedEof().ok());
  EXPECT_EQ(r.ends, 2);
  EXPECT_EQ(r.bodies[1], "all of it");
  EXPECT_FALSE(r.heads[1].keep_alive);
}

TEST(H1ParserTest, ACutShortMessageIsAnErrorAtEof) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kResponse, {}, &r);
  ASSERT_TRUE(FeedAll(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").ok());
  absl::Status st = p.FeedEof();
  EXPECT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("middle of a message"));
}

TEST(H1ParserTest, AnUpgradeStopsAtTheHeadAndLeavesTheRest) {
  Recorder r;
  H1Parser p(H1Parser::Kind::kRequest, {}, &r);
  const std::string head =
      "GET /ws HTTP/1.1\r\nHost: s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  auto n = p.Feed(head + "\x81\x05hello");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, head.size());
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_TRUE(r.heads[0].upgrade);
}

// A connection's next message reuses its header strings: no allocation
// per request once they have grown (shunt-l7-alloc-bench counts it).
TEST(H1HeadTest, ResetKeepsHeaderMemoryForTheNextMessageAndReleaseGivesItBack) {
  H1Head h;
  auto& ua = h.AddHeader();
  ua.first = "user-agent";
  ua.second = std::string(60, 'x');
  const char* kept = h.headers[0].second.data();
  h.Reset();
  EXPECT_TRUE(h.headers.empty());
  auto& next = h.AddHeader();
  EXPECT_TRUE(next.first.empty());
  EXPECT_TRUE(next.second.empty());
  EXPECT_EQ(next.second.data(), kept);
  EXPECT_GE(next.second.capacity(), 60u);
  h.Release();
  EXPECT_TRUE(h.headers.empty());
  EXPECT_TRUE(h.spare.empty());
  EXPECT_EQ(h.headers.capacity(), 0u);
  EXPECT_EQ(h.spare.capacity(), 0u);
}

}  // namespace
}  // namespace shunt::proxy::http
