// Fuzz target proxy_h1_session: HTTP/1.1 connections seen as HTTP/2-shaped
// streams (proxy/http/h1_session.h), where a pod and its upstream speak
// different versions: a pod's HTTP/1.1 requests (H1ServerSession), or an
// HTTP/1.1 upstream's responses (H1ClientSession). The first byte picks the
// side (bit 0: the client's, reading responses to a GET and a POST asked
// one after the other) and where the bytes are cut into three reads; the
// rest is the wire. The server side answers each request once it ended,
// with a body (chunked unless bit 1 gives a length), and takes its output,
// so pipelined requests follow.
//
// Beyond not crashing:
//  * a stream's events come in order: a head before any body, nothing
//    after its end or its close, one close per stream, ids rising;
//  * a head starts with its pseudo-headers and carries nothing HTTP/2
//    refuses (upper case, connection-specific headers; "upgrade" only on a
//    request that asked, for H2Proxy to answer), and a request has :method
//    and :path;
//  * after an error, the session takes no more bytes.
#include <map>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "proxy/http/h1_session.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

struct H1StreamSeen {
  bool head = false, end = false, closed = false;
};

bool ConnectionSpecific(const std::string& n) {
  return n == "connection" || n == "keep-alive" || n == "proxy-connection" ||
         n == "transfer-encoding" || n == "trailer";
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  using proxy::http::H2Headers;
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const bool client = mode & 1;
  const bool with_length = mode & 2;
  absl::string_view wire(reinterpret_cast<const char*>(data + 1), size - 1);
  std::map<int32_t, fuzz::H1StreamSeen> seen;
  int32_t last_head = 0;
  std::unique_ptr<proxy::http::MessageSession> session;
  std::vector<int32_t> to_answer;
  proxy::http::MessageSession::Events ev;
  ev.on_head = [&](int32_t id, H2Headers& h, bool) {
    fuzz::H1StreamSeen& s = seen[id];
    FUZZ_CHECK(!s.end && !s.closed);
    FUZZ_CHECK(!h.empty() && !h[0].first.empty() && h[0].first[0] == ':');
    bool pseudo = true, method = false, path = false;
    for (const auto& [n, v] : h) {
      FUZZ_CHECK(!n.empty());
      for (char c : n) FUZZ_CHECK(!absl::ascii_isupper(static_cast<unsigned char>(c)));
      if (n[0] == ':') {
        FUZZ_CHECK(pseudo);  // pseudo-headers first
        method |= n == ":method";
        path |= n == ":path";
        continue;
      }
      pseudo = false;
      FUZZ_CHECK(!fuzz::ConnectionSpecific(n));
      FUZZ_CHECK(n != "te" || absl::EqualsIgnoreCase(v, "trailers"));
      FUZZ_CHECK(n != "upgrade" || !client);
      FUZZ_CHECK(n != "host" || client);  // a request's Host is its :authority
    }
    if (!client) {
      FUZZ_CHECK(method && path);
      FUZZ_CHECK(id > last_head);
      last_head = id;
    }
    s.head = true;
  };
  ev.on_data = [&](int32_t id, absl::string_view d) {
    fuzz::H1StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
    session->Consumed(id, d.size());
  };
  ev.on_trailers = [&](int32_t id, H2Headers&) {
    fuzz::H1StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
  };
  ev.on_end = [&](int32_t id) {
    fuzz::H1StreamSeen& s = seen[id];
    FUZZ_CHECK(s.head && !s.end && !s.closed);
    s.end = true;
    if (!client) to_answer.push_back(id);
  };
  ev.on_close = [&](int32_t id, uint32_t) {
    fuzz::H1StreamSeen& s = seen[id];
    FUZZ_CHECK(!s.closed);
    s.closed = true;
  };
  const proxy::http::H1SessionLimits limits{
      .parser = {.max_head_bytes = 4096, .max_headers = 32}, .window = 4096, .send_buffer = 4096};
  if (client)
    session = std::make_unique<proxy::http::H1ClientSession>(limits, std::move(ev));
  else
    session = std::make_unique<proxy::http::H1ServerSession>(limits, std::move(ev));
  int requests = 0;
  auto ask = [&]() {
    // The next request once the connection takes one: a GET, then a POST.
    if (!client || requests >= 2 || !session->can_open()) return;
    auto id = session->SubmitRequest(
        {{":method", requests == 0 ? "GET" : "POST"}, {":authority", "a"}, {":path", "/"}},
        requests == 0);
    FUZZ_CHECK(id.ok());
    if (requests++ == 1) {
      session->Send(*id, "body");
      session->End(*id);
    }
  };
  auto answer = [&]() {
    std::vector<int32_t> ids;
    ids.swap(to_answer);
    for (int32_t id : ids) {
      H2Headers head = {{":status", "200"}};
      if (with_length) head.emplace_back("content-length", "2");
      if (!session->SubmitResponse(id, head, false).ok()) continue;
      session->Send(id, "ok");
      session->End(id, with_length ? H2Headers{} : H2Headers{{"grpc-status", "0"}});
    }
  };
  proxy::ByteBuffer out;
  ask();
  session->TakeOutput(&out);
  const size_t a = wire.empty() ? 0 : (mode >> 2) % (wire.size() + 1);
  const size_t b = a + (wire.size() - a) / 2;
  for (absl::string_view piece : {wire.substr(0, a), wire.substr(a, b - a), wire.substr(b)}) {
    if (!session->Receive(piece).ok()) {
      FUZZ_CHECK(client);  // a server answers a bad request itself (400)
      FUZZ_CHECK(!session->alive());
      session->TakeOutput(&out);
      return 0;
    }
    for (int round = 0; round < 8; ++round) {
      answer();
      out.clear();
      session->TakeOutput(&out);
      ask();
      if (to_answer.empty()) break;
    }
  }
  session->ReceiveEof();
  out.clear();
  session->TakeOutput(&out);
  return 0;
}
