#include "agent/certs/openssl_util.h"

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"

namespace shunt::certs {
namespace {

absl::Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTimeT(timegm(&tm));
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, n) : std::string();
}

}  // namespace

absl::Status OsslError(absl::StatusCode code, absl::string_view what) {
  unsigned long err = ERR_peek_last_error();
  char buf[256] = "no detail";
  if (err != 0) ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return absl::Status(code, absl::StrCat(what, " (", buf, ")"));
}

absl::StatusOr<X509Ptr> CertFromPem(absl::string_view pem, absl::string_view what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert)
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat(what, ": not a PEM certificate"));
  return cert;
}

absl::StatusOr<PkeyPtr> KeyFromPem(absl::string_view pem, absl::string_view what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key)
    return OsslError(absl::StatusCode::kInvalidArgument,
                     absl::StrCat(what, ": not an unencrypted PEM private key"));
  return key;
}

std::string CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return BioText(bio.get());
}

std::string KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return BioText(bio.get());
}

absl::StatusOr<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return OsslError(absl::StatusCode::kInternal, "certs: generate a P-256 key");
  return key;
}

absl::Time NotBefore(const X509* cert) { return FromAsn1(X509_get0_notBefore(cert)); }
absl::Time NotAfter(const X509* cert) { return FromAsn1(X509_get0_notAfter(cert)); }

std::string SerialHex(const X509* cert) {
  std::unique_ptr<BIGNUM, OsslFree> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

}  // namespace shunt::certs
