// What the receiving proxy checks about a caller's certificate before it
// lets a stream through: the chain up to this cluster's CA, the validity
// window, and exactly one SPIFFE ID of this trust domain as its URI SAN.
// Each refusal has a reason the proxy counts (shuntctl drops, /metrics).
#pragma once

#include <openssl/x509.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agent/certs/openssl_util.h"
#include "agent/certs/spiffe_id.h"

namespace shunt::certs {

enum class Refusal {
  kNone,
  kUnknownCa,           // not signed by the cluster's CA (or the chain is broken)
  kExpired,             // past notAfter
  kNotYetValid,         // before notBefore
  kNoIdentity,          // no URI SAN, more than one, or one that is not a SPIFFE ID
  kForeignTrustDomain,  // a SPIFFE ID of another trust domain
  kBadCertificate,      // unparsable, or refused by the chain check for another reason
};
// "unknown-ca", "expired", ... (the drop reason's name).
const char* RefusalName(Refusal r);

// The SPIFFE ID a certificate names: its only URI SAN, parsed strictly.
// InvalidArgument when it has none, several, or one that is not a SPIFFE ID.
absl::StatusOr<SpiffeId> SpiffeIdOf(X509* cert);
// Same, from DER bytes (the fuzz target's entry point).
absl::StatusOr<SpiffeId> SpiffeIdOfDer(absl::string_view der);

class PeerVerifier {
 public:
  // Trusts exactly the CA certificate `ca_pem`, for `trust_domain`.
  static absl::StatusOr<PeerVerifier> Create(absl::string_view ca_pem,
                                             absl::string_view trust_domain);

  struct Result {
    Refusal refusal = Refusal::kNone;
    std::string detail;  // what was wrong, for the log and the drop record
    SpiffeId id;         // when refusal == kNone
  };
  // Checks `leaf` (and any intermediates in `chain`) at time `now`.
  Result Verify(X509* leaf, STACK_OF(X509) * chain, absl::Time now) const;
  // Same, for a PEM leaf.
  Result VerifyPem(absl::string_view leaf_pem, absl::Time now) const;

 private:
  PeerVerifier(StorePtr store, std::string trust_domain)
      : store_(std::move(store)), trust_domain_(std::move(trust_domain)) {}
  std::shared_ptr<X509_STORE> store_;
  std::string trust_domain_;
};

// The refusal for an X.509 verification error (X509_V_ERR_*) of `leaf`
// (may be null), with what was wrong in `detail`. TLS handshakes use it on
// SSL_get_verify_result.
Refusal RefusalOfVerifyError(int x509_error, X509* leaf, std::string* detail);
// The SPIFFE ID of a leaf whose chain was already verified, checked
// against `trust_domain` (kNone, kNoIdentity or kForeignTrustDomain).
PeerVerifier::Result IdentityOf(X509* leaf, absl::string_view trust_domain);

}  // namespace shunt::certs
