#include "numbering_restore.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace shunt::endpoints {
namespace {

// A name of a fixed-size field of the maps: NUL-terminated unless it fills
// the field (anything may have written the pinned maps).
template <size_t N>
std::string Field(const char (&s)[N]) {
  return std::string(s, strnlen(s, N));
}

}  // namespace

std::vector<std::string> RestoreNumbering(const NumberingSources& from,
                                          IdentityAllocator& identities,
                                          IdentityAllocator& rule_ids) {
  std::vector<std::string> errors;
  if (auto ids = from.identity_meta->Entries(); ids.ok()) {
    for (const auto& [id, m] : *ids)
      identities.Seed({Field(m.namespace_), Field(m.service_account)}, id);
  } else {
    errors.push_back(absl::StrCat("identity names (", from.identity_meta->name(),
                                  "): ", ids.status().message()));
  }
  if (auto existing = from.endpoints->ReadEndpoints(); existing.ok()) {
    for (const auto& [cookie, e] : *existing)
      identities.Seed({Field(e.meta.namespace_), Field(e.meta.service_account)}, e.ep.identity);
  } else {
    errors.push_back(absl::StrCat("endpoints: ", existing.status().message()));
  }
  if (auto rules = from.rule_meta->Entries(); rules.ok()) {
    for (const auto& [id, m] : *rules) rule_ids.Seed({Field(m.namespace_), Field(m.name)}, id);
  } else {
    errors.push_back(
        absl::StrCat("rule names (", from.rule_meta->name(), "): ", rules.status().message()));
  }
  return errors;
}

}  // namespace shunt::endpoints
