// The API server's watch stream, as bytes arrive: a chunked HTTP body of
// JSON objects, one per event, back to back. Objects are found by their
// braces (outside strings), not by lines: nothing in the protocol promises
// a newline between events, and a string may hold one escaped.
// Part of the kube source (issue 13); no source uses it yet.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shunt::source::kube {

class WatchStreamDecoder {
 public:
  // An event larger than this is an error, not a reason to buffer forever.
  explicit WatchStreamDecoder(size_t max_object_bytes = 64u << 20)
      : max_object_bytes_(max_object_bytes) {}

  // Appends bytes as they arrive, however they are split.
  void Feed(std::string_view bytes) { buffer_.append(bytes); }

  // The next complete object, nullopt when more bytes are needed.
  // InvalidArgument for bytes that are not a JSON object where one must
  // start, for an object that does not parse, and for one over the size
  // limit; the stream cannot go on after an error (reconnect).
  std::optional<absl::StatusOr<nlohmann::json>> Next();

  // Bytes held that do not yet make an object.
  size_t pending() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;  // where the next object begins (or whitespace before it)
  size_t scan_ = 0;   // how far the current object has been scanned
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
  size_t max_object_bytes_;
  bool failed_ = false;
};

// One watch event: {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}.
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark, kError };
  Type type;
  nlohmann::json object;
  // For kError: the Status object's code (410 with reason Expired or Gone
  // means: relist) and its reason and message.
  int code = 0;
  std::string reason, message;
  // The object's metadata.resourceVersion (bookmarks carry only this).
  std::string resource_version;
};

// InvalidArgument naming what is missing or unknown.
absl::StatusOr<WatchEvent> ParseWatchEvent(const nlohmann::json& j);

// True for the bookmark that ends a WatchList's initial events: its
// metadata.annotations["k8s.io/initial-events-end"] is "true".
bool EndsInitialEvents(const WatchEvent& e);

// metadata.<key> of an object when it is a string, else "".
std::string MetaString(const nlohmann::json& object, const char* key);
// "namespace/name", the key objects are kept under.
std::string ObjectKey(const nlohmann::json& object);

// One page of a list answer: {"apiVersion": ..., "items": [...],
// "metadata": {"resourceVersion": ..., "continue": ...}}.
struct ListPage {
  // By key, in the list's order; items that are not objects are skipped,
  // and the others carry `kind` and the list's apiVersion where they had none
  // (the items of a list carry neither).
  std::vector<std::pair<std::string, nlohmann::json>> items;
  std::string resource_version;
  std::string continue_token;  // empty on the last page
};
// InvalidArgument when the body is not a JSON object with an items array.
absl::StatusOr<ListPage> ParseListPage(const std::string& body, const std::string& kind);

}  // namespace shunt::source::kube
