#include "cli.h"

#include "absl/strings/str_cat.h"
#include "agent/api/api_server.h"
#include "agent/lib/pin_layout.h"

namespace shunt::ctl {

absl::StatusOr<std::unique_ptr<lib::PinnedMaps>> OpenMaps(const Options& o) {
  auto maps = lib::PinnedMaps::Open(lib::PinLayout(o.bpffs), /*read_only=*/true);
  if (absl::IsNotFound(maps.status()))
    return absl::NotFoundError(absl::StrCat("no Shunt pins in ", o.bpffs,
                                            ": is an agent installed there? (--bpffs)"));
  return maps;
}

absl::StatusOr<Json> AgentRequest(const Options& o, const std::string& verb, const std::string& arg) {
  auto body = api::ApiCall(o.api_socket, arg.empty() ? verb : verb + " " + arg);
  if (!body.ok()) return body.status();
  Json j = Json::parse(*body, nullptr, false);
  if (j.is_discarded()) return absl::InternalError("agent answered with something that is not JSON");
  if (j.is_object() && j.contains("error")) return absl::FailedPreconditionError(j["error"].get<std::string>());
  return j;
}

}  // namespace shunt::ctl
