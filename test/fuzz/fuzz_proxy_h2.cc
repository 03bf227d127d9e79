// Fuzz target proxy_h2: the L7 layer's HTTP/2 sessions (proxy/http/
// h2_session.h over libnghttp2), the first code to read a pod's HTTP/2
// requests, or an upstream's responses. The first byte picks the side
// (bit 0: the client's, reading responses to a GET on stream 1) and where
// the bytes are cut into two reads; the rest is the wire. The server side
// answers each request with a small body, so the response path (the data
// provider, trailers) runs too.
//
// Beyond not crashing:
//  * a stream's events come in order: a head before any body, nothing
//    after its end or its close, one close per stream;
//  * a request head starts with pseudo-headers; no header name has upper
//    case (RFC 9113 8.2.1: nghttp2 refuses such a stream);
//  * after an error, the session takes no more bytes.
#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "proxy/http/h2_session.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

struct StreamSeen {
  bool head = false, end = false, closed = false;
};

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  using proxy::http::H2Headers;
  using proxy::http::H2Session;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const bool client = mode & 1;
  absl::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  std::map<int32_t, fuzz::StreamSeen> seen;
  std::unique_ptr<H2Session> session;
  H2Session::Events ev;
  ev.on_head = [&](int32_t id, H2Headers& h, bool end) {
    fuzz::StreamSeen& s = seen[id];
    FUZZ_CHECK(!s.end && !s.closed);
    FUZZ_CHECK(!h.empty() && !h[0].first.empty() && h[0].first[0] == ':');
    for (const auto& [n, v] : h)
      for (char c : n) FUZZ_CHECK(!absl::ascii_isupper(static_cast<unsigned char>(c)));
    s.head = true;
    if (!client) {
      (void)session->SubmitResponse(id, {{":status", "200"}}, false);
      session->Send(id, "ok");
      session->End(id, end ? H2Headers{} : H2Headers{{"grpc-status", "0"}});
    }
  };
  ev.on_data = [&](int32_t id, absl::string_view d) {
    fuzz::StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
    session->Consumed(id, d.size());
  };
  ev.on_trailers = [&](int32_t id, H2Headers&) {
    fuzz::StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
  };
  ev.on_end = [&](int32_t id) {
    fuzz::StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
    s.end = true;
  };
  ev.on_close = [&](int32_t id, uint32_t) {
    fuzz::StreamSeen& s = seen[id];
    FUZZ_CHECK(!s.closed);
    s.closed = true;
  };
  auto made = H2Session::Create(client ? H2Session::Role::kClient : H2Session::Role::kServer,
                                {.max_streams = 16, .max_header_list = 4096}, std::move(ev));
  FUZZ_CHECK(made.ok());
  session = std::move(*made);
  if (client) {
    auto id = session->SubmitRequest(
        {{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}, {":path", "/"}}, true);
    FUZZ_CHECK(id.ok() && *id == 1);
  }
  proxy::ByteBuffer out;
  session->TakeOutput(&out);
  const size_t cut = wire.empty() ? 0 : (mode >> 1) % (wire.size() + 1);
  for (absl::string_view piece : {wire.substr(0, cut), wire.substr(cut)}) {
    if (!session->Receive(piece).ok()) {
      FUZZ_CHECK(!session->Receive("more").ok());
      session->TakeOutput(&out);
      return 0;
    }
    out.clear();
    session->TakeOutput(&out);
  }
  return 0;
}
