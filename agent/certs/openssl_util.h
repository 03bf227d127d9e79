// Owning handles for the OpenSSL objects the certificate code uses, and
// OpenSSL's error queue as a Status.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace shunt::certs {

struct OsslFree {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
using X509Ptr = std::unique_ptr<X509, OsslFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, OsslFree>;
using BioPtr = std::unique_ptr<BIO, OsslFree>;
using StorePtr = std::unique_ptr<X509_STORE, OsslFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, OsslFree>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, OsslFree>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, OsslFree>;

// `what`: the newest OpenSSL error (and clears the queue), as `code`.
absl::Status OsslError(absl::StatusCode code, absl::string_view what);

// One PEM certificate / private key from text; InvalidArgument naming `what`.
absl::StatusOr<X509Ptr> CertFromPem(absl::string_view pem, absl::string_view what);
absl::StatusOr<PkeyPtr> KeyFromPem(absl::string_view pem, absl::string_view what);
std::string CertToPem(X509* cert);
std::string KeyToPem(EVP_PKEY* key);

// A new ECDSA P-256 key.
absl::StatusOr<PkeyPtr> NewP256Key();

// notBefore / notAfter of a certificate.
absl::Time NotBefore(const X509* cert);
absl::Time NotAfter(const X509* cert);
// The serial number in hex ("4F2A...").
std::string SerialHex(const X509* cert);

}  // namespace shunt::certs
