#include "reflector.h"

#include <sys/eventfd.h>

#include <chrono>
#include <random>

#include "absl/strings/str_cat.h"
#include "agent/source/kube/watch_stream.h"
#include "spdlog/spdlog.h"

namespace shunt::source::kube {
namespace {

std::string PercentEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// A Status body's reason and message, for logs.
std::string StatusText(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    return j["message"].get<std::string>();
  return body.substr(0, 200);
}

}  // namespace

UpdateQueue::UpdateQueue() : event_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

void UpdateQueue::Push(Update u) {
  {
    std::lock_guard lock(mu_);
    pending_.push_back(std::move(u));
  }
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(event_fd_.get(), &one, sizeof(one));
}

std::vector<Update> UpdateQueue::TakeAll() {
  uint64_t count = 0;
  [[maybe_unused]] ssize_t n = read(event_fd_.get(), &count, sizeof(count));
  std::lock_guard lock(mu_);
  return std::exchange(pending_, {});
}

Reflector::Reflector(size_t index, ResourceSpec spec, std::unique_ptr<ApiClient> client,
                     UpdateQueue& out, ReflectorOptions options)
    : index_(index),
      spec_(std::move(spec)),
      client_(std::move(client)),
      out_(out),
      options_(options),
      watchlist_(options.try_watchlist) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Reflector::RequestStop() {
  {
    std::lock_guard lock(sleep_mu_);
    stop_ = true;
  }
  sleep_cv_.notify_all();
}

void Reflector::Stop() {
  RequestStop();
  if (thread_.joinable()) thread_.join();
}

void Reflector::Sleep(int ms) {
  std::unique_lock lock(sleep_mu_);
  sleep_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_.load(); });
}

std::string Reflector::Url(const std::string& query) const {
  std::string q = query;
  if (!spec_.field_selector.empty())
    absl::StrAppend(&q, q.empty() ? "" : "&",
                    "fieldSelector=", PercentEncode(spec_.field_selector));
  return absl::StrCat(spec_.paths[path_index_], q.empty() ? "" : "?", q);
}

void Reflector::Fail(const std::string& line) {
  if (line != last_error_) spdlog::warn("kube {}: {}", spec_.name, line);
  last_error_ = line;
  out_.Push({.type = Update::Type::kState, .resource = index_, .state = line});
}

void Reflector::Run() {
  int backoff_ms = options_.backoff_initial_ms;
  std::mt19937 rng(std::random_device{}());
  while (!stop_) {
    Outcome o;
    if (!listed_) {
      if (!absent_)  // a missing CRD keeps saying so while it is looked for
        out_.Push({.type = Update::Type::kState, .resource = index_, .state = "listing"});
      o = watchlist_ ? WatchList() : List();
      if (o == Outcome::kAgain) listed_ = true;
    } else {
      o = Watch();
    }
    switch (o) {
      case Outcome::kStopped:
        return;
      case Outcome::kAgain:
        backoff_ms = options_.backoff_initial_ms;
        continue;
      case Outcome::kNextPath:
        continue;
      case Outcome::kWatchListRefused:
        // An older server (or the feature gate off): list + watch from now on.
        spdlog::info("kube {}: the server refused WatchList; using list and watch", spec_.name);
        watchlist_ = false;
        continue;
      case Outcome::kAbsent:
        listed_ = false;
        Sleep(options_.absent_poll_ms);
        continue;
      case Outcome::kRelist:
        // First from the last resourceVersion (the server's cache can
        // answer), at once; if that is gone too, from scratch, after a
        // backoff: a server that keeps answering 410 is not hammered.
        if (listed_) {
          relist_from_ = rv_;
          listed_ = false;
          continue;
        }
        relist_from_.clear();
        [[fallthrough]];
      case Outcome::kRetry: {
        int wait = retry_after_ms_ >= 0 ? retry_after_ms_ : backoff_ms;
        retry_after_ms_ = -1;
        // Full jitter on the backoff, so that the agents of every node do
        // not reconnect in step after the API server comes back.
        if (wait == backoff_ms) wait = std::uniform_int_distribution<int>(wait / 2, wait)(rng);
        backoff_ms = std::min(backoff_ms * 2, options_.backoff_max_ms);
        Sleep(wait);
        continue;
      }
    }
  }
}

Reflector::Outcome Reflector::FromStatus(const ApiResponse& r, const std::string& what) {
  const std::string text = StatusText(r.body);
  if (r.status == 404 && path_index_ + 1 < spec_.paths.size()) {
    ++path_index_;  // the next version of the resource: list it
    listed_ = false;
    return Outcome::kNextPath;
  }
  if (r.status == 404) {
    path_index_ = 0;
    if (!spec_.optional) {
      Fail(absl::StrCat(what, ": 404 ", text));
      return Outcome::kRetry;
    }
    // A CRD that is not installed: nothing of it is in force, and it is
    // looked for again now and then.
    if (!absent_) {
      // The line first: once the (empty) state counts as synced, it says why.
      out_.Push({.type = Update::Type::kState,
                 .resource = index_,
                 .state = "not installed (the API server has no such resource; install its CRD)"});
      Replace({});
    }
    absent_ = true;
    return Outcome::kAbsent;
  }
  if (r.status == 410) return Outcome::kRelist;
  if (r.status == 429) {
    retry_after_ms_ = r.retry_after_s >= 0 ? r.retry_after_s * 1000 : -1;
    Fail(absl::StrCat(what, ": 429 too many requests, retrying after ",
                      r.retry_after_s >= 0 ? absl::StrCat(r.retry_after_s, " s") : "a backoff"));
    return Outcome::kRetry;
  }
  if (r.status == 401) {
    Fail(absl::StrCat(what, ": 401 unauthorized (token re-read; check the credentials)"));
    return Outcome::kRetry;
  }
  if (r.status == 403) {
    Fail(absl::StrCat(what, ": 403 forbidden: ", text, " (check the ClusterRole)"));
    return Outcome::kRetry;
  }
  Fail(absl::StrCat(what, ": HTTP ", r.status, " ", text));
  return Outcome::kRetry;
}

Reflector::Outcome Reflector::List() {
  std::unordered_map<std::string, nlohmann::json> objects;
  std::string cont, list_rv;
  for (;;) {
    std::string q = absl::StrCat("limit=", options_.page_size);
    if (!cont.empty()) {
      absl::StrAppend(&q, "&continue=", PercentEncode(cont));
    } else if (!relist_from_.empty()) {
      absl::StrAppend(&q, "&resourceVersion=", PercentEncode(relist_from_),
                      "&resourceVersionMatch=NotOlderThan");
    }
    auto r = client_->Get(Url(q), stop_);
    if (stop_) return Outcome::kStopped;
    if (!r.ok()) {
      Fail(std::string(r.status().message()));
      return Outcome::kRetry;
    }
    if (r->status == 410 || (r->status == 504 && !relist_from_.empty())) {
      // An expired continue token, or a resourceVersion the server no
      // longer (or not yet) has: list again from scratch.
      relist_from_.clear();
      return Outcome::kRelist;
    }
    if (r->status != 200) return FromStatus(*r, "list");
    auto page = ParseListPage(r->body, spec_.kind);
    if (!page.ok()) {
      Fail(absl::StrCat("list: ", page.status().message()));
      return Outcome::kRetry;
    }
    for (auto& [key, item] : page->items) objects[key] = std::move(item);
    list_rv = std::move(page->resource_version);
    cont = std::move(page->continue_token);
    if (cont.empty()) break;
  }
  relist_from_.clear();
  rv_ = list_rv;
  Replace(std::move(objects));
  return Outcome::kAgain;
}

Reflector::Outcome Reflector::WatchList() {
  const std::string q =
      absl::StrCat("watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersion=",
                   PercentEncode(relist_from_),
                   "&resourceVersionMatch=NotOlderThan&timeoutSeconds=", options_.watch_timeout_s);
  return ReadStream(Url(q), /*watch_list=*/true);
}

Reflector::Outcome Reflector::Watch() {
  const std::string q =
      absl::StrCat("watch=1&allowWatchBookmarks=true&resourceVersion=", PercentEncode(rv_),
                   "&timeoutSeconds=", options_.watch_timeout_s);
  return ReadStream(Url(q), /*watch_list=*/false);
}

Reflector::Outcome Reflector::ReadStream(const std::string& url, bool watch_list) {
  WatchStreamDecoder decoder;
  std::unordered_map<std::string, nlohmann::json> initial;  // WatchList: until its end bookmark
  bool initial_done = !watch_list;
  std::optional<Outcome> verdict;  // set by the reader to end the stream
  auto on_data = [&](std::string_view bytes) {
    decoder.Feed(bytes);
    while (auto next = decoder.Next()) {
      if (!next->ok()) {
        Fail(absl::StrCat("watch: ", next->status().message(), "; reconnecting"));
        verdict = Outcome::kRetry;
        return false;
      }
      auto event = ParseWatchEvent(**next);
      if (!event.ok()) {
        Fail(absl::StrCat("watch: ", event.status().message(), "; reconnecting"));
        verdict = Outcome::kRetry;
        return false;
      }
      using T = WatchEvent::Type;
      if (event->type == T::kError) {
        if (event->code == 410) {
          spdlog::info("kube {}: watch expired ({}): relisting", spec_.name, event->message);
          verdict = Outcome::kRelist;
        } else {
          Fail(
              absl::StrCat("watch: ERROR ", event->code, " ", event->reason, ": ", event->message));
          verdict = Outcome::kRetry;
        }
        return false;
      }
      if (!event->resource_version.empty()) rv_ = event->resource_version;
      if (event->type == T::kBookmark) {
        if (initial_done) continue;
        if (EndsInitialEvents(*event)) {
          initial_done = true;
          relist_from_.clear();
          listed_ = true;  // from here on, a broken stream resumes from rv_
          Replace(std::exchange(initial, {}));
          out_.Push({.type = Update::Type::kState,
                     .resource = index_,
                     .state = "watching",
                     .settled = true});
          continue;
        }
        // A bookmark before the end of the initial events: the server
        // ignored sendInitialEvents (older than WatchList).
        verdict = Outcome::kWatchListRefused;
        return false;
      }
      if (!event->object.contains("kind")) event->object["kind"] = spec_.kind;
      if (!initial_done) {
        // The key first: a json assignment takes its value by copy, which
        // would move the object out before the key was read from it.
        const std::string key = ObjectKey(event->object);
        if (event->type == T::kDeleted)
          initial.erase(key);
        else
          initial[key] = std::move(event->object);
        continue;
      }
      Deliver(event->object, event->type == T::kDeleted);
    }
    return true;
  };
  if (!watch_list)
    out_.Push(
        {.type = Update::Type::kState, .resource = index_, .state = "watching", .settled = true});
  auto r = client_->Stream(url, on_data, stop_, options_.watch_timeout_s + 30);
  if (stop_) return Outcome::kStopped;
  if (verdict) return *verdict;
  if (!r.ok()) {
    if (absl::IsCancelled(r.status()) && initial_done) return Outcome::kAgain;  // our own timeout
    Fail(std::string(r.status().message()));
    return Outcome::kRetry;
  }
  if (r->status != 200) {
    if (watch_list && (r->status == 400 || r->status == 422)) return Outcome::kWatchListRefused;
    return FromStatus(*r, "watch");
  }
  if (decoder.pending() > 0) {
    // The connection ended inside an event: resume from the last complete one.
    Fail("watch: the stream ended inside an event; resuming");
    return Outcome::kRetry;
  }
  if (!initial_done) return Outcome::kWatchListRefused;  // ended without the end bookmark
  last_error_.clear();
  return Outcome::kAgain;  // the server ended the watch (timeoutSeconds): watch again
}

void Reflector::Deliver(const nlohmann::json& object, bool deleted) {
  const std::string key = ObjectKey(object);
  std::optional<nlohmann::json> kept = deleted ? std::nullopt : spec_.keep(object);
  if (!kept) {
    if (kept_.erase(key) == 0) return;  // never delivered
    out_.Push({.type = Update::Type::kDelete,
               .resource = index_,
               .namespace_ = MetaString(object, "namespace"),
               .name = MetaString(object, "name")});
    return;
  }
  const size_t hash = std::hash<std::string>()(kept->dump());
  auto [it, fresh] = kept_.emplace(key, hash);
  if (!fresh && it->second == hash) return;  // nothing we keep changed
  it->second = hash;
  out_.Push({.type = Update::Type::kUpsert, .resource = index_, .doc = {.doc = *std::move(kept)}});
}

void Reflector::Replace(std::unordered_map<std::string, nlohmann::json> objects) {
  absent_ = false;
  Update u{.type = Update::Type::kReplace, .resource = index_};
  kept_.clear();
  std::vector<std::pair<std::string, nlohmann::json>> sorted;
  for (auto& [key, o] : objects) {
    auto kept = spec_.keep(o);
    if (!kept) continue;
    kept_[key] = std::hash<std::string>()(kept->dump());
    sorted.emplace_back(key, *std::move(kept));
  }
  // A stable order: the store's "first definition wins" must not depend on
  // a hash map's.
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [key, o] : sorted) u.docs.push_back({.doc = std::move(o)});
  out_.Push(std::move(u));
}

}  // namespace shunt::source::kube
