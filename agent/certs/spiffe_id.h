// A workload identity as SPIFFE names it: spiffe://TRUST_DOMAIN/ns/NS/sa/SA,
// the form Istio and Linkerd use for a Kubernetes service account. It is the
// only URI SAN of a workload certificate (docs/mtls.md).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shunt::certs {

// The identity every node proxy presents as a tunnel's server end
// (docs/mtls.md); no workload holds it: the agent issues no workload
// certificate for it.
inline constexpr char kNodeProxyNamespace[] = "shunt-system";
inline constexpr char kNodeProxyServiceAccount[] = "shunt-proxy";

struct SpiffeId {
  std::string trust_domain;
  std::string ns;
  std::string service_account;

  // "spiffe://cluster.local/ns/demo/sa/web".
  std::string Uri() const;
  bool operator==(const SpiffeId& o) const {
    return trust_domain == o.trust_domain && ns == o.ns && service_account == o.service_account;
  }
};

// Checks a trust domain as the SPIFFE standard has it (lowercase letters,
// digits, '.', '-', '_'; at most 255 bytes). InvalidArgument naming what is
// wrong.
absl::Status CheckTrustDomain(absl::string_view trust_domain);

// The identity of a service account. InvalidArgument if a part is not a
// valid SPIFFE path segment (Kubernetes names always are).
absl::StatusOr<SpiffeId> MakeSpiffeId(absl::string_view trust_domain, absl::string_view ns,
                                      absl::string_view service_account);

// Parses a URI of exactly the form spiffe://TD/ns/NS/sa/SA, strictly as the
// SPIFFE standard has it: lowercase scheme and trust domain, no port, user
// info, query, fragment, percent-encoding, empty or dot segments, at most
// 2048 bytes. InvalidArgument saying which rule the text broke.
absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri);

}  // namespace shunt::certs
