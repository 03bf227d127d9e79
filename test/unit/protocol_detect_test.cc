#include "proxy/http/protocol_detect.h"

#include <string>

#include "gtest/gtest.h"

namespace shunt::proxy::http {
namespace {

TEST(ProtocolDetectTest, RequestLinesAreHttp1AsSoonAsTheMethodEnds) {
  EXPECT_EQ(DetectProtocol("GET / HTTP/1.1\r\n"), Detected::kHttp1);
  EXPECT_EQ(DetectProtocol("GET "), Detected::kHttp1);
  EXPECT_EQ(DetectProtocol("GE"), Detected::kNeedMore);
  EXPECT_EQ(DetectProtocol("M-SEARCH * HTTP/1.1"), Detected::kHttp1);
  EXPECT_EQ(DetectProtocol("PRIX / HTTP/1.1"), Detected::kHttp1)
      << "a method starting like the h2 preface";
}

TEST(ProtocolDetectTest, TheHttp2PrefaceIsHttp2OnceWhole) {
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  for (size_t i = 1; i < preface.size(); ++i)
    EXPECT_EQ(DetectProtocol(preface.substr(0, i)), Detected::kNeedMore) << i;
  EXPECT_EQ(DetectProtocol(preface), Detected::kHttp2);
  EXPECT_EQ(DetectProtocol(preface + "\x00\x00\x12\x04"), Detected::kHttp2);
  EXPECT_EQ(DetectProtocol("PRI * HTTP/2.0\r\n\r\nXX"), Detected::kOther)
      << "a broken preface is neither";
}

TEST(ProtocolDetectTest, EverythingElseIsOther) {
  EXPECT_EQ(DetectProtocol("\x16\x03\x01\x02\x00"), Detected::kOther) << "a TLS ClientHello";
  EXPECT_EQ(DetectProtocol("*1\r\n$4\r\nPING\r\n"), Detected::kOther) << "redis";
  EXPECT_EQ(DetectProtocol(" GET /"), Detected::kOther);
  EXPECT_EQ(DetectProtocol(std::string(30, 'A')), Detected::kOther) << "no space in time";
  EXPECT_EQ(DetectProtocol(""), Detected::kNeedMore);
  EXPECT_STREQ(DetectedName(Detected::kHttp2), "h2");
}

}  // namespace
}  // namespace shunt::proxy::http
