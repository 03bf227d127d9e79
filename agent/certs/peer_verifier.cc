#include "agent/certs/peer_verifier.h"

#include "absl/strings/str_cat.h"

namespace shunt::certs {

const char* RefusalName(Refusal r) {
  switch (r) {
    case Refusal::kNone:
      return "none";
    case Refusal::kUnknownCa:
      return "unknown-ca";
    case Refusal::kExpired:
      return "expired";
    case Refusal::kNotYetValid:
      return "not-yet-valid";
    case Refusal::kNoIdentity:
      return "no-spiffe-id";
    case Refusal::kForeignTrustDomain:
      return "foreign-trust-domain";
    case Refusal::kBadCertificate:
      return "bad-certificate";
  }
  return "?";
}

absl::StatusOr<SpiffeId> SpiffeIdOf(X509* cert) {
  GeneralNamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return absl::InvalidArgumentError("certificate: no subjectAltName");
  absl::string_view uri;
  int uris = 0;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type != GEN_URI) continue;
    ++uris;
    const ASN1_IA5STRING* s = n->d.uniformResourceIdentifier;
    uri = absl::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                            static_cast<size_t>(ASN1_STRING_length(s)));
  }
  if (uris == 0) return absl::InvalidArgumentError("certificate: no URI SAN (no SPIFFE ID)");
  if (uris > 1)
    return absl::InvalidArgumentError(
        absl::StrCat("certificate: ", uris, " URI SANs (a SPIFFE certificate has exactly one)"));
  if (uri.find('\0') != absl::string_view::npos)
    return absl::InvalidArgumentError("certificate: URI SAN with a NUL byte");
  return ParseSpiffeId(uri);
}

absl::StatusOr<SpiffeId> SpiffeIdOfDer(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("certificate: not DER X.509");
  }
  return SpiffeIdOf(cert.get());
}

absl::StatusOr<PeerVerifier> PeerVerifier::Create(absl::string_view ca_pem,
                                                  absl::string_view trust_domain) {
  if (auto s = CheckTrustDomain(trust_domain); !s.ok()) return s;
  auto ca = CertFromPem(ca_pem, "CA certificate");
  if (!ca.ok()) return ca.status();
  StorePtr store(X509_STORE_new());
  if (!store || X509_STORE_add_cert(store.get(), ca->get()) != 1)
    return OsslError(absl::StatusCode::kInternal, "certs: trust store");
  return PeerVerifier(std::move(store), std::string(trust_domain));
}

PeerVerifier::Result PeerVerifier::Verify(X509* leaf, STACK_OF(X509) * chain,
                                          absl::Time now) const {
  Result r;
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store_.get(), leaf, chain) != 1) {
    ERR_clear_error();
    return {Refusal::kBadCertificate, "cannot set up the chain check", {}};
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(now));
  // TLS client or server: the same certificate serves both ends.
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_ANY);
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    r.refusal = RefusalOfVerifyError(err, leaf, &r.detail);
    return r;
  }
  return IdentityOf(leaf, trust_domain_);
}

Refusal RefusalOfVerifyError(int err, X509* leaf, std::string* detail) {
  *detail = X509_verify_cert_error_string(err);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      if (leaf) *detail = absl::StrCat("expired at ", absl::FormatTime(NotAfter(leaf)));
      return Refusal::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      if (leaf) *detail = absl::StrCat("not valid before ", absl::FormatTime(NotBefore(leaf)));
      return Refusal::kNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      *detail = absl::StrCat("not issued by this cluster's CA (", *detail, ")");
      return Refusal::kUnknownCa;
    default:
      return Refusal::kBadCertificate;
  }
}

PeerVerifier::Result IdentityOf(X509* leaf, absl::string_view trust_domain) {
  auto id = SpiffeIdOf(leaf);
  if (!id.ok()) return {Refusal::kNoIdentity, std::string(id.status().message()), {}};
  if (id->trust_domain != trust_domain) {
    return {Refusal::kForeignTrustDomain,
            absl::StrCat(id->Uri(), " is not of trust domain ", trust_domain),
            {}};
  }
  return {Refusal::kNone, "", std::move(*id)};
}

PeerVerifier::Result PeerVerifier::VerifyPem(absl::string_view leaf_pem, absl::Time now) const {
  auto leaf = CertFromPem(leaf_pem, "peer certificate");
  if (!leaf.ok()) return {Refusal::kBadCertificate, std::string(leaf.status().message()), {}};
  return Verify(leaf->get(), nullptr, now);
}

}  // namespace shunt::certs
