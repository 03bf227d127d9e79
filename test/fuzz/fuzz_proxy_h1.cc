// Fuzz target proxy_h1: the L7 layer's HTTP/1.x parser (proxy/http), the
// first code to read a pod's request or a server's response. The first
// byte picks requests or responses and where the bytes are cut into two
// reads; the rest is the wire.
//
// Beyond not crashing:
//  * a read is never reported as more than it was, and the parser never
//    moves on from an error;
//  * a message whose head named a Content-Length delivers exactly that
//    many body bytes when it ends (none for a response to HEAD); a head with Content-Length and
//    chunked together never reaches the handler (request smuggling);
//  * every error answers 400, 431 or 505, with a reason.
#include <string>

#include "proxy/http/h1_parser.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

struct Checker : proxy::http::H1Parser::Handler {
  bool no_body = false;  // the next response answers a HEAD
  int64_t expected = -1;
  uint64_t body = 0;
  bool in_message = false;
  void OnHead(proxy::http::H1Head& h) override {
    FUZZ_CHECK(!(h.chunked && h.content_length >= 0));
    FUZZ_CHECK(h.version_major == 1 && h.version_minor <= 1);
    expected = no_body ? 0 : h.chunked ? -1 : h.content_length;
    no_body = false;
    body = 0;
    in_message = true;
  }
  void OnBody(absl::string_view piece) override {
    FUZZ_CHECK(in_message);
    body += piece.size();
    if (expected >= 0) FUZZ_CHECK(body <= static_cast<uint64_t>(expected));
  }
  void OnMessageEnd() override {
    if (expected >= 0 && in_message) FUZZ_CHECK(body == static_cast<uint64_t>(expected));
    in_message = false;
  }
};

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  absl::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  fuzz::Checker c;
  proxy::http::H1Parser p(
      mode & 1 ? proxy::http::H1Parser::Kind::kResponse : proxy::http::H1Parser::Kind::kRequest,
      {.max_head_bytes = 4096, .max_headers = 32}, &c);
  if ((mode & 1) && (mode & 2)) {
    p.ExpectNoBody();
    c.no_body = true;
  }
  const size_t cut = wire.empty() ? 0 : (mode >> 2) % (wire.size() + 1);
  absl::string_view pieces[2] = {wire.substr(0, cut), wire.substr(cut)};
  for (absl::string_view piece : pieces) {
    for (int guard = 0; !piece.empty() && guard < 10000; ++guard) {
      auto n = p.Feed(piece);
      if (!n.ok()) {
        const int s = p.error_status();
        FUZZ_CHECK(s == 400 || s == 431 || s == 505);
        FUZZ_CHECK(!n.status().message().empty());
        FUZZ_CHECK(!p.Feed("GET / HTTP/1.1\r\n\r\n").ok());
        return 0;
      }
      FUZZ_CHECK(*n <= piece.size());
      piece.remove_prefix(*n);
      if (p.paused()) {
        p.Resume();
      } else if (*n == 0 || !piece.empty()) {
        return 0;  // an upgrade: the rest is not HTTP
      }
    }
  }
  (void)p.FeedEof();
  return 0;
}
