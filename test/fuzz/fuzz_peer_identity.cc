// Fuzz target peer_identity: what the receiving proxy reads from a caller
// it does not trust yet. The input is taken both as a DER certificate
// (SpiffeIdOfDer: OpenSSL's parser, then the URI SAN rules) and as the text
// of a URI SAN (ParseSpiffeId).
//
// Beyond not crashing:
//  * an identity read from either form prints back (Uri()) to text that
//    parses to the same identity;
//  * a URI SAN accepted as text is exactly its canonical form (the parser
//    is strict: no second spelling of one identity gets through);
//  * an accepted identity is at most 2048 bytes and names no empty part.
#include <string>

#include "agent/certs/peer_verifier.h"
#include "agent/certs/spiffe_id.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

void CheckIdentity(const certs::SpiffeId& id) {
  FUZZ_CHECK(!id.trust_domain.empty() && !id.ns.empty() && !id.service_account.empty());
  const std::string uri = id.Uri();
  FUZZ_CHECK(uri.size() <= 2048);
  auto again = certs::ParseSpiffeId(uri);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == id);
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto id = certs::SpiffeIdOfDer(input); id.ok()) fuzz::CheckIdentity(*id);
  if (auto id = certs::ParseSpiffeId(input); id.ok()) {
    fuzz::CheckIdentity(*id);
    FUZZ_CHECK(id->Uri() == input);
  }
  return 0;
}
