#include "agent/certs/authority.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "agent/lib/status_macros.h"

namespace shunt::certs {
namespace {

// A random positive serial of at most 127 bits (RFC 5280: at most 20 bytes,
// positive; enough entropy that two never meet).
absl::Status SetRandomSerial(X509* cert) {
  std::unique_ptr<BIGNUM, OsslFree> bn(BN_new());
  if (!bn || BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
    return OsslError(absl::StatusCode::kInternal, "certs: random serial");
  if (BN_is_zero(bn.get())) BN_one(bn.get());
  ASN1_INTEGER* serial = X509_get_serialNumber(cert);
  if (!BN_to_ASN1_INTEGER(bn.get(), serial))
    return OsslError(absl::StatusCode::kInternal, "certs: set serial");
  return absl::OkStatus();
}

absl::Status SetValidity(X509* cert, absl::Time from, absl::Time to) {
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(from)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(to)))
    return OsslError(absl::StatusCode::kInternal, "certs: set validity");
  return absl::OkStatus();
}

absl::Status SetName(X509_NAME* name, const std::string& cn) {
  if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                  reinterpret_cast<const unsigned char*>("shunt"), -1, -1, 0) ||
      !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0))
    return OsslError(absl::StatusCode::kInternal, "certs: set name");
  return absl::OkStatus();
}

// Adds extensions given in OpenSSL's configuration syntax, `issuer`
// signing `cert` (itself for a self-signed certificate).
absl::Status AddExtensions(X509* cert, X509* issuer,
                           std::initializer_list<std::pair<int, std::string>> exts) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : exts) {
    ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || !X509_add_ext(cert, ext.get(), -1))
      return OsslError(absl::StatusCode::kInternal,
                       absl::StrCat("certs: extension ", OBJ_nid2sn(nid), "=", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return lib::ErrnoStatus(errno, absl::StrCat("certs: read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST)
      return absl::AlreadyExistsError(
          absl::StrCat("certs: ", path, " exists; not overwriting a CA (remove it first)"));
    return lib::ErrnoStatus(errno, absl::StrCat("certs: create ", path));
  }
  const bool ok =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  const int err = errno;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return lib::ErrnoStatus(err, absl::StrCat("certs: write ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InitAuthority(const std::string& dir, absl::Time now, absl::Duration validity) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return lib::ErrnoStatus(errno, absl::StrCat("certs: create ", dir));
  const std::string cert_path = absl::StrCat(dir, "/", kCaCertFile);
  const std::string key_path = absl::StrCat(dir, "/", kCaKeyFile);
  for (const std::string& p : {cert_path, key_path}) {
    if (access(p.c_str(), F_OK) == 0)
      return absl::AlreadyExistsError(
          absl::StrCat("certs: ", p, " exists; not overwriting a CA (remove it first)"));
  }
  SHUNT_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  SHUNT_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  SHUNT_RETURN_IF_ERROR(SetValidity(cert.get(), now - absl::Minutes(1), now + validity));
  SHUNT_RETURN_IF_ERROR(SetName(X509_get_subject_name(cert.get()), "shunt root CA"));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
  X509_set_pubkey(cert.get(), key.get());
  SHUNT_RETURN_IF_ERROR(AddExtensions(cert.get(), cert.get(),
                                      {{NID_basic_constraints, "critical,CA:TRUE"},
                                       {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                       {NID_subject_key_identifier, "hash"}}));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0)
    return OsslError(absl::StatusCode::kInternal, "certs: sign the CA certificate");
  SHUNT_RETURN_IF_ERROR(WriteNewFile(key_path, KeyToPem(key.get()), 0600));
  if (auto s = WriteNewFile(cert_path, CertToPem(cert.get()), 0644); !s.ok()) {
    unlink(key_path.c_str());
    return s;
  }
  return absl::OkStatus();
}

Authority::Authority(X509Ptr cert, PkeyPtr key)
    : cert_(std::move(cert)), key_(std::move(key)), cert_pem_(CertToPem(cert_.get())) {}

absl::StatusOr<std::unique_ptr<Authority>> Authority::Load(const std::string& dir, absl::Time now) {
  const std::string cert_path = absl::StrCat(dir, "/", kCaCertFile);
  const std::string key_path = absl::StrCat(dir, "/", kCaKeyFile);
  auto cert = ReadFile(cert_path);
  if (!cert.ok())
    return absl::FailedPreconditionError(absl::StrCat(
        cert.status().message(), " (create a CA with `shuntctl ca init --dir ", dir, "`)"));
  auto key = ReadFile(key_path);
  if (!key.ok()) return absl::FailedPreconditionError(key.status().message());
  auto ca = FromPem(*cert, *key, now);
  if (!ca.ok())
    return absl::FailedPreconditionError(absl::StrCat(dir, ": ", ca.status().message()));
  return ca;
}

absl::StatusOr<std::unique_ptr<Authority>> Authority::FromPem(const std::string& cert_pem,
                                                              const std::string& key_pem,
                                                              absl::Time now) {
  SHUNT_ASSIGN_OR_RETURN(X509Ptr cert, CertFromPem(cert_pem, kCaCertFile));
  SHUNT_ASSIGN_OR_RETURN(PkeyPtr key, KeyFromPem(key_pem, kCaKeyFile));
  if (X509_check_ca(cert.get()) <= 0)
    return absl::InvalidArgumentError(
        absl::StrCat(kCaCertFile, ": not a CA certificate (basicConstraints CA:TRUE missing)"));
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(kCaKeyFile, ": is not the key of ", kCaCertFile));
  }
  if (NotAfter(cert.get()) <= now)
    return absl::InvalidArgumentError(
        absl::StrCat(kCaCertFile, ": expired at ", absl::FormatTime(NotAfter(cert.get()))));
  return std::unique_ptr<Authority>(new Authority(std::move(cert), std::move(key)));
}

absl::StatusOr<IssuedCertificate> Authority::Issue(const SpiffeId& id, absl::Duration ttl,
                                                   absl::Time now) const {
  if (ttl <= absl::ZeroDuration())
    return absl::InvalidArgumentError("certs: a certificate lifetime must be positive");
  if (now >= not_after())
    return absl::FailedPreconditionError(absl::StrCat(
        "certs: the CA expired at ", absl::FormatTime(not_after()), "; replace --ca-dir's CA"));
  SHUNT_ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  SHUNT_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  const absl::Time until = std::min(now + ttl, not_after());
  SHUNT_RETURN_IF_ERROR(SetValidity(cert.get(), now - absl::Minutes(1), until));
  SHUNT_RETURN_IF_ERROR(
      SetName(X509_get_subject_name(cert.get()), absl::StrCat(id.ns, "/", id.service_account)));
  X509_set_issuer_name(cert.get(), X509_get_subject_name(cert_.get()));
  X509_set_pubkey(cert.get(), key.get());
  SHUNT_RETURN_IF_ERROR(AddExtensions(cert.get(), cert_.get(),
                                      {{NID_basic_constraints, "critical,CA:FALSE"},
                                       {NID_key_usage, "critical,digitalSignature"},
                                       {NID_ext_key_usage, "serverAuth,clientAuth"},
                                       {NID_subject_key_identifier, "hash"},
                                       {NID_authority_key_identifier, "keyid:always"},
                                       {NID_subject_alt_name, "URI:" + id.Uri()}}));
  if (X509_sign(cert.get(), key_.get(), EVP_sha256()) == 0)
    return OsslError(absl::StatusCode::kInternal, absl::StrCat("certs: sign for ", id.Uri()));
  return IssuedCertificate{.id = id,
                           .cert_pem = CertToPem(cert.get()),
                           .key_pem = KeyToPem(key.get()),
                           .serial_hex = SerialHex(cert.get()),
                           .not_before = NotBefore(cert.get()),
                           .not_after = NotAfter(cert.get())};
}

}  // namespace shunt::certs
