// One resource of the API server mirrored into the kube source, the way
// client-go's reflector does it (KUBE-API.md): list (paged, or streamed by
// WatchList where the server accepts it), then watch from the list's
// resourceVersion with bookmarks; resume from the last resourceVersion when
// a watch ends; relist on 410 (from the last resourceVersion, then from
// scratch); back off with jitter, honouring Retry-After. Each reflector
// runs on its own thread and only ever pushes updates to the queue the
// agent's loop drains; it never touches the object store.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "agent/lib/unique_fd.h"
#include "agent/model/object_store.h"
#include "agent/source/kube/api_client.h"
#include "nlohmann/json.hpp"

namespace shunt::source::kube {

// What a reflector tells the source.
struct Update {
  enum class Type { kReplace, kUpsert, kDelete, kState };
  Type type = Type::kState;
  size_t resource = 0;                // index into the source's resources
  std::vector<model::Document> docs;  // kReplace: everything the resource has now
  model::Document doc;                // kUpsert
  std::string namespace_, name;       // kDelete
  // kState: a line for `status` ("watching", "not installed: ...", an
  // error); `settled`: the resource's state is known (listed, or known to
  // be absent), so the source may count as synced.
  std::string state;
  bool settled = false;
};

// Reflectors push, the agent's loop takes; the eventfd wakes the loop.
class UpdateQueue {
 public:
  UpdateQueue();
  int fd() const { return event_fd_.get(); }
  void Push(Update u);
  std::vector<Update> TakeAll();

 private:
  lib::UniqueFd event_fd_;
  std::mutex mu_;
  std::vector<Update> pending_;
};

struct ResourceSpec {
  std::string name;                // "pods on this node", for status
  std::vector<std::string> paths;  // collection URLs, tried in order while they answer 404
  std::string kind;                // "Pod": items of a list carry no kind
  std::string field_selector;      // "spec.nodeName=node-a", or empty
  bool optional = false;           // a CRD: 404 means "not installed", a status line
  // The part of an object the store keeps; nullopt when the object does
  // not belong to this resource (a pod without an IP yet, one that has
  // ended, a pod of another node): it then counts as deleted.
  std::function<std::optional<nlohmann::json>(const nlohmann::json&)> keep;
};

struct ReflectorOptions {
  int page_size = 500;
  int watch_timeout_s = 300;  // timeoutSeconds of a watch: a few minutes
  bool try_watchlist = true;  // sendInitialEvents first; list+watch when refused
  int backoff_initial_ms = 500;
  int backoff_max_ms = 30'000;
  int absent_poll_ms = 10'000;  // how often a missing CRD is looked for again
};

class Reflector {
 public:
  Reflector(size_t index, ResourceSpec spec, std::unique_ptr<ApiClient> client, UpdateQueue& out,
            ReflectorOptions options);
  ~Reflector();  // stops and joins
  void Start();
  // Asks the thread to end (it notices within a second); Stop() also joins.
  void RequestStop();
  void Stop();

 private:
  enum class Outcome { kAgain, kNextPath, kRelist, kRetry, kAbsent, kWatchListRefused, kStopped };
  void Run();
  Outcome List();
  Outcome WatchList();
  Outcome Watch();
  // Shared by Watch and WatchList: reads one watch stream; `initial` holds
  // the objects of a WatchList until its end bookmark.
  Outcome ReadStream(const std::string& url, bool watch_list);
  Outcome FromStatus(const ApiResponse& r, const std::string& what);
  void Fail(const std::string& line);
  // Pushes the object as an upsert or a delete, when its kept part changed.
  void Deliver(const nlohmann::json& object, bool deleted);
  void Replace(std::unordered_map<std::string, nlohmann::json> objects);
  std::string Url(const std::string& query) const;
  void Sleep(int ms);

  const size_t index_;
  const ResourceSpec spec_;
  std::unique_ptr<ApiClient> client_;
  UpdateQueue& out_;
  const ReflectorOptions options_;

  size_t path_index_ = 0;
  bool listed_ = false;      // the state is known; a broken watch resumes from rv_
  std::string rv_;           // the last resourceVersion seen
  std::string relist_from_;  // a relist first tries NotOlderThan this one
  bool watchlist_ = true;
  int retry_after_ms_ = -1;  // from the last 429
  std::string last_error_;
  bool absent_ = false;  // the resource answered 404 (a CRD not installed)
  // key (ns/name) -> hash of the kept part, to skip events that change
  // nothing we keep (most pod status updates).
  std::unordered_map<std::string, size_t> kept_;

  std::atomic<bool> stop_{false};
  std::mutex sleep_mu_;
  std::condition_variable sleep_cv_;
  std::thread thread_;
};

}  // namespace shunt::source::kube
