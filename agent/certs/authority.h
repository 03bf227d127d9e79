// The node's certificate authority: the CA certificate and key the agent
// reads from --ca-dir (a Secret in Kubernetes) and the short-lived workload
// certificates it issues from them for the identities of its local pods.
// The CA's key stays in the agent; the proxy gets only leaf keys.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/certs/openssl_util.h"
#include "agent/certs/spiffe_id.h"

namespace shunt::certs {

// The files of a CA directory (`shuntctl ca init --dir DIR`).
inline constexpr char kCaCertFile[] = "ca.crt";
inline constexpr char kCaKeyFile[] = "ca.key";

struct IssuedCertificate {
  SpiffeId id;
  std::string cert_pem;  // the leaf, signed by the CA
  std::string key_pem;   // its ECDSA P-256 key (PKCS#8)
  std::string serial_hex;
  absl::Time not_before;
  absl::Time not_after;
};

// Writes DIR/ca.crt and DIR/ca.key (mode 0600): a new ECDSA P-256 key and a
// self-signed CA certificate valid from `now` for `validity`. Creates DIR
// (0700) if missing; refuses (AlreadyExists naming the file) to overwrite
// either file, and leaves nothing behind on failure.
absl::Status InitAuthority(const std::string& dir, absl::Time now,
                           absl::Duration validity = absl::Hours(24 * 3650));

class Authority {
 public:
  // Reads DIR/ca.crt and DIR/ca.key. FailedPrecondition naming the file and
  // what is wrong: missing, not PEM, not a CA certificate, a key that is not
  // the certificate's, a CA that is expired at `now`.
  static absl::StatusOr<std::unique_ptr<Authority>> Load(const std::string& dir, absl::Time now);
  // Same, from PEM text (tests, and the agent's reload).
  static absl::StatusOr<std::unique_ptr<Authority>> FromPem(const std::string& cert_pem,
                                                            const std::string& key_pem,
                                                            absl::Time now);

  // A certificate for `id`: a fresh P-256 key, a random 127-bit serial,
  // valid from a minute before `now` (clock skew between nodes) for `ttl`,
  // but never past the CA's own expiry; the SPIFFE ID as its only URI SAN;
  // usable for TLS client and server authentication, not as a CA.
  absl::StatusOr<IssuedCertificate> Issue(const SpiffeId& id, absl::Duration ttl,
                                          absl::Time now) const;

  const std::string& cert_pem() const { return cert_pem_; }
  X509* cert() const { return cert_.get(); }
  absl::Time not_after() const { return NotAfter(cert_.get()); }

 private:
  Authority(X509Ptr cert, PkeyPtr key);
  X509Ptr cert_;
  PkeyPtr key_;
  std::string cert_pem_;
};

}  // namespace shunt::certs
