// How the server reads a request, on bytes alone (agent/http/request_parser.h):
// the same parser, limits and answers as on a socket (http_server_test.cc).
#include "agent/http/request_parser.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace shunt::http {
namespace {

using ::testing::HasSubstr;
using Outcome = ParsedRequest::Outcome;

TEST(ParseRequestTest, AWholeRequestWithItsQueryAndBody) {
  const std::string bytes =
      "POST /v1/policy%2Fcheck?a=1&b=x%2Fy HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
      "GET /next HTTP/1.1\r\n\r\n";
  const ParsedRequest r = ParseRequest(bytes, {}, /*eof=*/false);
  ASSERT_EQ(r.outcome, Outcome::kComplete);
  EXPECT_EQ(r.request.method, "POST");
  EXPECT_EQ(r.request.path, "/v1/policy/check");
  EXPECT_EQ(r.request.raw_query, "a=1&b=x%2Fy");
  EXPECT_EQ(r.request.query.at("b"), "x/y");
  EXPECT_EQ(r.request.body, "body");
  EXPECT_EQ(r.version, 11u);
  EXPECT_TRUE(r.keep_alive);
  // The pipelined request after it is left for the next read.
  EXPECT_EQ(bytes.substr(r.consumed), "GET /next HTTP/1.1\r\n\r\n");
}

TEST(ParseRequestTest, AChunkedBody) {
  const ParsedRequest r = ParseRequest(
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", {},
      true);
  ASSERT_EQ(r.outcome, Outcome::kComplete);
  EXPECT_EQ(r.request.body, "abcde");
}

TEST(ParseRequestTest, HalfARequestWaitsOrEndsWithoutAnAnswer) {
  const std::string half = "GET /v1/ping HTTP/1.1\r\nHost:";
  EXPECT_EQ(ParseRequest(half, {}, /*eof=*/false).outcome, Outcome::kIncomplete);
  // The client closed inside the request (partial_message), or before it.
  const ParsedRequest closed = ParseRequest(half, {}, /*eof=*/true);
  EXPECT_EQ(closed.outcome, Outcome::kClosed);
  EXPECT_FALSE(closed.answer);
  EXPECT_EQ(ParseRequest("", {}, true).outcome, Outcome::kClosed);
}

TEST(ParseRequestTest, OversizedHeadsAndBodiesAndGarbageAreAnswered) {
  const RequestLimits limits{.max_header_bytes = 1024, .max_body_bytes = 8};
  const ParsedRequest head = ParseRequest(
      "GET /v1/ping HTTP/1.1\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n", limits, false);
  ASSERT_EQ(head.outcome, Outcome::kRejected);
  EXPECT_EQ(head.answer->status, 431);
  EXPECT_THAT(head.answer->body, HasSubstr("request head over 1024 bytes"));

  const ParsedRequest body =
      ParseRequest("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", limits, false);
  ASSERT_EQ(body.outcome, Outcome::kRejected);
  EXPECT_EQ(body.answer->status, 413);

  const ParsedRequest bad = ParseRequest("NOT HTTP\r\n\r\n", limits, false);
  ASSERT_EQ(bad.outcome, Outcome::kRejected);
  EXPECT_EQ(bad.answer->status, 400);
  EXPECT_THAT(bad.answer->body, HasSubstr("malformed request"));
}

}  // namespace
}  // namespace shunt::http
