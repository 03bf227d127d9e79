// Fuzz target connect_request: what a receiving proxy reads from a peer
// node before it trusts any of it, above TLS: the HTTP/2 connection (a
// server TunnelSession: preface, SETTINGS, HEADERS with CONNECT, DATA,
// resets, floods) and each request's :authority (ParseConnectAuthority),
// accepted or refused as the proxy does.
//
// Beyond not crashing:
//  * an authority that parses prints back (ToAuthority) to text that parses
//    to the same destination, and never names port 0;
//  * the session never reports more open streams than its limit;
//  * output is bounded: what one input makes the session write stays within
//    a multiple of the input (no amplification beyond the library's own
//    answers).
#include <string>

#include "proxy/tunnel/connect_authority.h"
#include "proxy/tunnel/tunnel_session.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

void CheckAuthority(absl::string_view a) {
  auto d = proxy::ParseConnectAuthority(a);
  if (!d.ok()) return;
  FUZZ_CHECK(d->port != 0);
  auto again = proxy::ParseConnectAuthority(d->ToAuthority());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *d);
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  fuzz::CheckAuthority(input);

  proxy::TunnelLimits limits;
  limits.max_streams = 8;
  proxy::TunnelSession* session = nullptr;
  proxy::TunnelSession::Events events;
  events.on_connect = [&session](int32_t id, absl::string_view authority) {
    fuzz::CheckAuthority(authority);
    if (proxy::ParseConnectAuthority(authority).ok())
      session->Accept(id);
    else
      session->Refuse(id, 400);
  };
  events.on_data = [&session](int32_t id, absl::string_view d) {
    session->Send(id, d);  // an echoing pod
    session->Consumed(id, d.size());
  };
  events.on_peer_eof = [&session](int32_t id) { session->CloseWrite(id); };
  auto s = proxy::TunnelSession::Create(proxy::TunnelSession::Role::kServer, limits, events);
  FUZZ_CHECK(s.ok());
  session = s->get();
  // With and without the preface in front, so the fuzzer reaches frames.
  std::string with_preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  with_preface.append(input.data(), input.size());
  std::string out;
  for (size_t off = 0; off < with_preface.size() && session->alive();) {
    const size_t n = std::min<size_t>(with_preface.size() - off, 1 + (off % 97));
    if (!session->Receive(absl::string_view(with_preface).substr(off, n)).ok()) break;
    off += n;
    session->TakeOutput(&out);
    FUZZ_CHECK(session->open_streams() <= limits.max_streams);
  }
  session->TakeOutput(&out);
  FUZZ_CHECK(out.size() <= 4096 + 2 * with_preface.size());
  return 0;
}
