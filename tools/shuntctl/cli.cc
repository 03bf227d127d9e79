#include "cli.h"

#include "absl/strings/str_cat.h"
#include "agent/http/client.h"
#include "agent/lib/pin_layout.h"

namespace shunt::ctl {

absl::StatusOr<std::unique_ptr<lib::PinnedMaps>> OpenMaps(const Options& o) {
  auto maps = lib::PinnedMaps::Open(lib::PinLayout(o.bpffs), /*read_only=*/true);
  if (absl::IsNotFound(maps.status()))
    return absl::NotFoundError(
        absl::StrCat("no Shunt pins in ", o.bpffs, ": is an agent installed there? (--bpffs)"));
  return maps;
}

absl::StatusOr<Json> AgentRequest(const Options& o, const std::string& method,
                                  const std::string& target, const std::string& body) {
  auto r = http::UnixRequest(o.api_socket, method, target, body);
  if (!r.ok()) return r.status();
  Json j = Json::parse(r->body, nullptr, false);
  if (j.is_discarded())
    return absl::InternalError(
        absl::StrCat("agent answered ", r->status, " with something that is not JSON"));
  if (j.is_object() && j.contains("error") && j["error"].is_string())
    return absl::FailedPreconditionError(j["error"].get<std::string>());
  if (r->status != 200) return absl::InternalError(absl::StrCat("agent answered ", r->status));
  return j;
}

}  // namespace shunt::ctl
