#include "watch_stream.h"

#include "absl/strings/str_cat.h"

namespace shunt::source::kube {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

}  // namespace

std::optional<absl::StatusOr<nlohmann::json>> WatchStreamDecoder::Next() {
  if (failed_)
    return absl::StatusOr<nlohmann::json>(absl::FailedPreconditionError(
        "watch stream: an earlier error ended this stream; reconnect"));
  auto fail = [&](std::string msg) {
    failed_ = true;
    return std::optional<absl::StatusOr<nlohmann::json>>(absl::InvalidArgumentError(msg));
  };
  if (depth_ == 0) {
    while (start_ < buffer_.size() && IsSpace(buffer_[start_])) ++start_;
    if (start_ == buffer_.size()) {
      buffer_.clear();
      start_ = scan_ = 0;
      return std::nullopt;
    }
    if (buffer_[start_] != '{')
      return fail(absl::StrCat("watch stream: expected a JSON object, got '",
                               buffer_.substr(start_, 20), "'"));
    scan_ = start_;
  }
  for (; scan_ < buffer_.size(); ++scan_) {
    if (scan_ - start_ + 1 > max_object_bytes_)
      return fail(
          absl::StrCat("watch stream: an event is larger than ", max_object_bytes_, " bytes"));
    const char c = buffer_[scan_];
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        const size_t end = scan_ + 1;
        auto j = nlohmann::json::parse(buffer_.begin() + static_cast<std::ptrdiff_t>(start_),
                                       buffer_.begin() + static_cast<std::ptrdiff_t>(end), nullptr,
                                       /*allow_exceptions=*/false);
        // Drop what was consumed; keep the rest for the next call.
        buffer_.erase(0, end);
        start_ = scan_ = 0;
        if (j.is_discarded() || !j.is_object())
          return fail("watch stream: an event is not valid JSON");
        return absl::StatusOr<nlohmann::json>(std::move(j));
      }
    }
  }
  return std::nullopt;
}

absl::StatusOr<WatchEvent> ParseWatchEvent(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return absl::InvalidArgumentError("watch event: no type");
  const std::string type = j["type"].get<std::string>();
  WatchEvent e;
  if (type == "ADDED") {
    e.type = WatchEvent::Type::kAdded;
  } else if (type == "MODIFIED") {
    e.type = WatchEvent::Type::kModified;
  } else if (type == "DELETED") {
    e.type = WatchEvent::Type::kDeleted;
  } else if (type == "BOOKMARK") {
    e.type = WatchEvent::Type::kBookmark;
  } else if (type == "ERROR") {
    e.type = WatchEvent::Type::kError;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("watch event: unknown type '", type, "'"));
  }
  if (!j.contains("object") || !j["object"].is_object())
    return absl::InvalidArgumentError(absl::StrCat("watch event ", type, ": no object"));
  e.object = j["object"];
  if (e.type == WatchEvent::Type::kError) {
    // A metav1.Status: {"kind":"Status","code":410,"reason":"Expired",...}
    if (e.object.contains("code") && e.object["code"].is_number_integer())
      e.code = e.object["code"].get<int>();
    if (e.object.contains("reason") && e.object["reason"].is_string())
      e.reason = e.object["reason"].get<std::string>();
    if (e.object.contains("message") && e.object["message"].is_string())
      e.message = e.object["message"].get<std::string>();
    return e;
  }
  const auto meta = e.object.find("metadata");
  if (meta != e.object.end() && meta->is_object()) {
    auto rv = meta->find("resourceVersion");
    if (rv != meta->end() && rv->is_string()) e.resource_version = rv->get<std::string>();
  }
  if (e.type == WatchEvent::Type::kBookmark && e.resource_version.empty())
    return absl::InvalidArgumentError("watch event BOOKMARK: no metadata.resourceVersion");
  return e;
}

bool EndsInitialEvents(const WatchEvent& e) {
  if (e.type != WatchEvent::Type::kBookmark) return false;
  const auto meta = e.object.find("metadata");
  if (meta == e.object.end() || !meta->is_object()) return false;
  // find(), not value(): value() throws on a member of another type.
  const auto annotations = meta->find("annotations");
  if (annotations == meta->end() || !annotations->is_object()) return false;
  const auto end = annotations->find("k8s.io/initial-events-end");
  return end != annotations->end() && end->is_string() && end->get<std::string>() == "true";
}

std::string MetaString(const nlohmann::json& object, const char* key) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return "";
  auto v = m->find(key);
  return v != m->end() && v->is_string() ? v->get<std::string>() : "";
}

std::string ObjectKey(const nlohmann::json& object) {
  return absl::StrCat(MetaString(object, "namespace"), "/", MetaString(object, "name"));
}

absl::StatusOr<ListPage> ParseListPage(const std::string& body, const std::string& kind) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("items") || !j["items"].is_array())
    return absl::InvalidArgumentError("the answer is not a list");
  ListPage page;
  // Not j.value("apiVersion", ""): it throws when apiVersion is not a string.
  const auto api = j.find("apiVersion");
  const std::string api_version = api != j.end() && api->is_string() ? api->get<std::string>() : "";
  for (auto& item : j["items"]) {
    if (!item.is_object()) continue;
    // Items of a list carry no kind or apiVersion: they are the list's.
    if (!item.contains("kind")) item["kind"] = kind;
    if (!item.contains("apiVersion")) item["apiVersion"] = api_version;
    std::string key = ObjectKey(item);  // before the item is moved
    page.items.emplace_back(std::move(key), std::move(item));
  }
  page.resource_version = MetaString(j, "resourceVersion");
  page.continue_token = MetaString(j, "continue");
  return page;
}

}  // namespace shunt::source::kube
