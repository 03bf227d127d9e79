#include "proxy/http/protocol_detect.h"

#include <algorithm>

namespace shunt::proxy::http {
namespace {

constexpr absl::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// RFC 9110 token characters: what a method is made of.
bool IsTchar(char c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return absl::string_view("!#$%&'*+-.^_`|~").find(c) != absl::string_view::npos;
}
// Longer than any method a request line would carry (the registry's
// longest is under 20): past this without a space, it is not HTTP.
constexpr size_t kMaxMethod = 24;

}  // namespace

Detected DetectProtocol(absl::string_view b) {
  if (b.empty()) return Detected::kNeedMore;
  // The HTTP/2 preface first: "PRI" is also a valid HTTP/1 method token.
  const size_t n = std::min(b.size(), kH2Preface.size());
  if (b.substr(0, n) == kH2Preface.substr(0, n))
    return b.size() >= kH2Preface.size() ? Detected::kHttp2 : Detected::kNeedMore;
  // An HTTP/2 request line that is not the preface is a broken preface.
  if (b.size() >= 12 && b.substr(0, 12) == kH2Preface.substr(0, 12)) return Detected::kOther;
  for (size_t i = 0; i < b.size() && i <= kMaxMethod; ++i) {
    if (b[i] == ' ') return i == 0 ? Detected::kOther : Detected::kHttp1;
    if (!IsTchar(b[i])) return Detected::kOther;
  }
  return b.size() > kMaxMethod ? Detected::kOther : Detected::kNeedMore;
}

const char* DetectedName(Detected d) {
  switch (d) {
    case Detected::kNeedMore:
      return "need-more";
    case Detected::kHttp1:
      return "http/1";
    case Detected::kHttp2:
      return "h2";
    case Detected::kOther:
      return "other";
  }
  return "?";
}

}  // namespace shunt::proxy::http
