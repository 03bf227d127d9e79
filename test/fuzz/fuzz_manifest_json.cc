// Fuzz target manifest_json: what the kube source reads from the API
// server. The input is taken three ways at once:
//  * a watch stream (WatchStreamDecoder): each object is a watch event
//    (ParseWatchEvent, EndsInitialEvents) whose object goes through the
//    slimming the reflector does (KeepPod, KeepObject) into the object
//    store (Upsert, Delete), or, without a "type", an object upserted as
//    it is, so the fuzzer reaches every kind's decoder with JSON;
//  * a list answer (ParseListPage), each item upserted;
//  * then the store publishes a snapshot.
//
// Beyond not crashing:
//  * the decoder yields the same objects (and the same error) whether the
//    bytes arrive at once or cut at points derived from the input;
//  * every object it yields dumps and parses back to itself;
//  * slimming is idempotent: KeepPod and KeepObject of their own output
//    give that output again;
//  * list items all carry a kind and an apiVersion.
#include <string>
#include <vector>

#include "agent/model/object_store.h"
#include "agent/source/kube/resources.h"
#include "agent/source/kube/watch_stream.h"
#include "test/fuzz/fuzz_check.h"

namespace shunt::fuzz {
namespace {

using source::kube::WatchStreamDecoder;

// What the decoder makes of `bytes` fed in pieces of the sizes `cuts`
// gives (0: all at once): each object's dump, then the error's code if
// any, else how many bytes it still holds.
std::vector<std::string> Decode(std::string_view bytes, uint64_t cuts,
                                std::vector<nlohmann::json>* objects) {
  WatchStreamDecoder decoder(1 << 16);
  std::vector<std::string> out;
  size_t pos = 0;
  bool failed = false;
  while (pos < bytes.size() && !failed) {
    size_t n = bytes.size() - pos;
    if (cuts != 0) {
      n = std::min<size_t>(n, 1 + cuts % 97);
      cuts = cuts * 6364136223846793005ull + 1442695040888963407ull;
    }
    decoder.Feed(bytes.substr(pos, n));
    pos += n;
    while (auto next = decoder.Next()) {
      if (!next->ok()) {
        // The message quotes what is buffered, which depends on the pieces.
        out.push_back("error " + std::to_string(static_cast<int>(next->status().code())));
        failed = true;
        break;
      }
      out.push_back((*next)->dump());
      if (objects) objects->push_back(**next);
    }
  }
  if (!failed) out.push_back("pending " + std::to_string(decoder.pending()));
  return out;
}

void Keep(model::ObjectStore& store, const nlohmann::json& object, bool deleted) {
  namespace kube = source::kube;
  const std::string kind =
      object.is_object() && object.contains("kind") && object["kind"].is_string()
          ? object["kind"].get<std::string>()
          : "";
  std::optional<nlohmann::json> kept;
  if (kind == "Pod") {
    for (bool local : {true, false}) {
      auto k = kube::KeepPod(object, "node-a", local);
      if (!k) continue;
      FUZZ_CHECK(kube::KeepPod(*k, "node-a", local) == *k);
      kept = std::move(k);
    }
  } else {
    kept = kube::KeepObject(object);
    if (kept) FUZZ_CHECK(kube::KeepObject(*kept) == *kept);
  }
  if (deleted || !kept) {
    store.Delete("watch", kind, kube::MetaString(object, "namespace"),
                 kube::MetaString(object, "name"));
    return;
  }
  store.Upsert("watch", {.doc = *std::move(kept)});
}

}  // namespace
}  // namespace shunt::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shunt;
  namespace kube = source::kube;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<nlohmann::json> objects;
  const auto whole = fuzz::Decode(bytes, 0, &objects);
  const auto cut = fuzz::Decode(bytes, fuzz::Fnv1a(data, size) | 1, nullptr);
  if (whole != cut) {
    for (const auto* v : {&whole, &cut}) {
      std::fprintf(stderr, "%s:\n", v == &whole ? "at once" : "in pieces");
      for (const std::string& s : *v) std::fprintf(stderr, "  %s\n", s.c_str());
    }
  }
  FUZZ_CHECK(whole == cut);

  model::ObjectStore store;
  for (const nlohmann::json& o : objects) {
    FUZZ_CHECK(o.is_object());
    FUZZ_CHECK(nlohmann::json::parse(o.dump()) == o);
    if (!o.contains("type")) {
      store.Upsert("objects", {.doc = o});
      continue;
    }
    auto event = kube::ParseWatchEvent(o);
    if (!event.ok()) {
      FUZZ_CHECK(event.status().code() == absl::StatusCode::kInvalidArgument);
      continue;
    }
    if (kube::EndsInitialEvents(*event))
      FUZZ_CHECK(event->type == kube::WatchEvent::Type::kBookmark);
    if (event->type == kube::WatchEvent::Type::kAdded ||
        event->type == kube::WatchEvent::Type::kModified ||
        event->type == kube::WatchEvent::Type::kDeleted)
      fuzz::Keep(store, event->object, event->type == kube::WatchEvent::Type::kDeleted);
  }

  auto page = kube::ParseListPage(std::string(bytes), "Pod");
  if (page.ok()) {
    for (auto& [key, item] : page->items) {
      FUZZ_CHECK(item.contains("kind") && item.contains("apiVersion"));
      FUZZ_CHECK(key == kube::ObjectKey(item));
      fuzz::Keep(store, item, false);
    }
  } else {
    FUZZ_CHECK(page.status().code() == absl::StatusCode::kInvalidArgument);
  }
  const auto snap = store.Publish();
  FUZZ_CHECK(snap->documents >= 0);
  return 0;
}
