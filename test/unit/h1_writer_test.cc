#include "proxy/http/h1_writer.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/http/h1_parser.h"
#include "test/unit/h1_messages.h"

namespace shunt::proxy::http {
namespace {

// What a client reads of the proxy's own answer: parsed back by the same
// parser a response from a server goes through, so its framing is checked
// (a wrong Content-Length would leave a client waiting or misread the next).
test_util::RecordedMessages ParseAnswer(const ByteBuffer& out) {
  test_util::RecordedMessages r;
  H1Parser p(H1Parser::Kind::kResponse, {}, &r);
  auto n = p.Feed(out.view());
  EXPECT_TRUE(n.ok()) << n.status();
  if (n.ok()) {
    EXPECT_EQ(*n, out.size()) << "nothing may follow the answer";
  }
  return r;
}

TEST(H1WriterTest, ADenialNamesItsReasonAndRouteInTheHeaderAndTheBody) {
  ByteBuffer out;
  WriteLocalAnswer(403, "x-shunt-denied", "route-not-granted", "shop/api#write", false, &out);
  auto r = ParseAnswer(out);
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_EQ(r.heads[0].status, 403);
  EXPECT_EQ(r.heads[0].Header("x-shunt-denied"), "route-not-granted; route=shop/api#write");
  EXPECT_EQ(r.heads[0].Header("connection"), "");
  ASSERT_EQ(r.bodies.size(), 1u);
  EXPECT_EQ(r.bodies[0], "Forbidden: route-not-granted; route=shop/api#write\n");
  EXPECT_EQ(r.ends, 1);
}

TEST(H1WriterTest, AnErrorWithoutARouteClosesWhenAsked) {
  ByteBuffer out;
  WriteLocalAnswer(502, "x-shunt-error", "upstream-connect-failed: Connection refused", "", true,
                   &out);
  auto r = ParseAnswer(out);
  ASSERT_EQ(r.heads.size(), 1u);
  EXPECT_EQ(r.heads[0].status, 502);
  EXPECT_EQ(r.heads[0].Header("x-shunt-error"), "upstream-connect-failed: Connection refused");
  EXPECT_EQ(r.heads[0].Header("connection"), "close");
  ASSERT_EQ(r.bodies.size(), 1u);
  EXPECT_EQ(r.bodies[0], "Bad Gateway: upstream-connect-failed: Connection refused\n");
}

TEST(H1WriterTest, ALongReasonIsCutInTheHeaderButWholeInTheBody) {
  const std::string reason(100, 'r'), route(100, 'o');
  ByteBuffer out;
  WriteLocalAnswer(403, "x-shunt-denied", reason, route, false, &out);
  auto r = ParseAnswer(out);
  ASSERT_EQ(r.heads.size(), 1u);
  const std::string whole = reason + "; route=" + route;
  EXPECT_EQ(r.heads[0].Header("x-shunt-denied"), whole.substr(0, 128));
  ASSERT_EQ(r.bodies.size(), 1u);
  EXPECT_EQ(r.bodies[0], "Forbidden: " + whole + "\n");
}

}  // namespace
}  // namespace shunt::proxy::http
