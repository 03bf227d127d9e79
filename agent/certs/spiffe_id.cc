#include "agent/certs/spiffe_id.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace shunt::certs {
namespace {

constexpr absl::string_view kScheme = "spiffe://";
constexpr size_t kMaxUri = 2048;
constexpr size_t kMaxTrustDomain = 255;

bool TrustDomainChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// The SPIFFE standard's path segment characters (no percent-encoding).
bool SegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_';
}

absl::Status CheckSegment(absl::string_view what, absl::string_view s) {
  if (s.empty()) return absl::InvalidArgumentError(absl::StrCat("spiffe id: empty ", what));
  if (s == "." || s == "..")
    return absl::InvalidArgumentError(absl::StrCat("spiffe id: ", what, " is a dot segment"));
  for (char c : s) {
    if (!SegmentChar(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("spiffe id: ", what, " '", s, "' has a character outside [A-Za-z0-9._-]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string SpiffeId::Uri() const {
  return absl::StrCat(kScheme, trust_domain, "/ns/", ns, "/sa/", service_account);
}

absl::Status CheckTrustDomain(absl::string_view td) {
  if (td.empty()) return absl::InvalidArgumentError("spiffe id: empty trust domain");
  if (td.size() > kMaxTrustDomain)
    return absl::InvalidArgumentError("spiffe id: trust domain longer than 255 bytes");
  for (char c : td) {
    if (!TrustDomainChar(c)) {
      return absl::InvalidArgumentError(absl::StrCat("spiffe id: trust domain '", td,
                                                     "' has a character outside [a-z0-9._-] (",
                                                     c == ':'   ? "no port"
                                                     : c == '@' ? "no user info"
                                                                : "lowercase only",
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SpiffeId> MakeSpiffeId(absl::string_view trust_domain, absl::string_view ns,
                                      absl::string_view service_account) {
  if (auto s = CheckTrustDomain(trust_domain); !s.ok()) return s;
  if (auto s = CheckSegment("namespace", ns); !s.ok()) return s;
  if (auto s = CheckSegment("service account", service_account); !s.ok()) return s;
  SpiffeId id{std::string(trust_domain), std::string(ns), std::string(service_account)};
  if (id.Uri().size() > kMaxUri)
    return absl::InvalidArgumentError("spiffe id: longer than 2048 bytes");
  return id;
}

absl::StatusOr<SpiffeId> ParseSpiffeId(absl::string_view uri) {
  if (uri.size() > kMaxUri) return absl::InvalidArgumentError("spiffe id: longer than 2048 bytes");
  if (uri.substr(0, kScheme.size()) != kScheme)
    return absl::InvalidArgumentError("spiffe id: does not start with 'spiffe://'");
  absl::string_view rest = uri.substr(kScheme.size());
  const size_t slash = rest.find('/');
  if (slash == absl::string_view::npos)
    return absl::InvalidArgumentError("spiffe id: no path (want /ns/NS/sa/SA)");
  if (auto s = CheckTrustDomain(rest.substr(0, slash)); !s.ok()) return s;
  const absl::string_view path = rest.substr(slash + 1);
  if (path.find_first_of("?#") != absl::string_view::npos)
    return absl::InvalidArgumentError("spiffe id: has a query or fragment");
  std::vector<absl::string_view> seg = absl::StrSplit(path, '/');
  if (seg.size() != 4 || seg[0] != "ns" || seg[2] != "sa") {
    return absl::InvalidArgumentError(
        absl::StrCat("spiffe id: path '/", path, "' is not /ns/NAMESPACE/sa/SERVICE_ACCOUNT"));
  }
  return MakeSpiffeId(rest.substr(0, slash), seg[1], seg[3]);
}

}  // namespace shunt::certs
