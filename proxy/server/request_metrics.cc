#include "proxy/server/request_metrics.h"

#include <sys/socket.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "proxy/common/thread_index.h"

namespace shunt::proxy {

RequestMetrics::Shard& RequestMetrics::ShardOfThisThread() {
  return shards_[ThisThreadIndex() % kShards];
}

bool RequestMetrics::Admit(KeySet& set, const std::string& key, size_t limit) {
  if (set.full.load(std::memory_order_acquire)) return set.keys.contains(key);
  std::lock_guard<std::mutex> lock(keys_mu_);
  if (set.keys.contains(key)) return true;
  if (set.keys.size() >= limit) return false;
  set.keys.insert(key);
  if (set.keys.size() >= limit) set.full.store(true, std::memory_order_release);
  return true;
}

void RequestMetrics::Add(absl::string_view source, absl::string_view destination, uint16_t port,
                         absl::string_view route, int status, int64_t micros, int retries) {
  // The key is built in a buffer each thread keeps: no allocation per
  // request once a series exists.
  thread_local std::string key;
  key.clear();
  absl::StrAppend(&key, source, "\x1f", destination, "\x1f", port, "\x1f", route);
  const double seconds = static_cast<double>(micros) / 1e6;
  const size_t bucket = std::lower_bound(kBounds.begin(), kBounds.end(), seconds) - kBounds.begin();
  const size_t cls = status >= 100 && status < 600 ? static_cast<size_t>(status / 100) : 0;
  Shard& shard = ShardOfThisThread();
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.series.find(key);
  if (it == shard.series.end()) {
    if (!Admit(series_keys_, key, kMaxSeries)) {
      ++shard.series_dropped;
      return;
    }
    it = shard.series.emplace(key, Series{}).first;
    it->second.source = std::string(source);
    it->second.destination = std::string(destination);
    it->second.route = std::string(route);
    it->second.port = port;
  }
  Series& s = it->second;
  ++s.by_class[cls];
  ++s.buckets[bucket];
  s.sum_s += seconds;
  ++s.count;
  s.retries += static_cast<uint64_t>(std::max(retries, 0));
}

nlohmann::json RequestMetrics::Report() const {
  static constexpr const char* kClass[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  // The shards merged: a series that several threads counted is one.
  absl::flat_hash_map<std::string, Series> merged;
  uint64_t dropped = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    dropped += shard.series_dropped;
    for (const auto& [key, s] : shard.series) {
      auto [it, fresh] = merged.try_emplace(key, s);
      if (fresh) continue;
      Series& m = it->second;
      for (size_t i = 0; i < m.by_class.size(); ++i) m.by_class[i] += s.by_class[i];
      for (size_t i = 0; i < m.buckets.size(); ++i) m.buckets[i] += s.buckets[i];
      m.sum_s += s.sum_s;
      m.count += s.count;
      m.retries += s.retries;
    }
  }
  nlohmann::json series = nlohmann::json::array();
  for (const auto& [key, s] : merged) {
    nlohmann::json classes = nlohmann::json::object();
    for (size_t i = 0; i < s.by_class.size(); ++i)
      if (s.by_class[i]) classes[kClass[i]] = s.by_class[i];
    nlohmann::json buckets = nlohmann::json::array();
    uint64_t running = 0;
    for (uint64_t b : s.buckets) buckets.push_back(running += b);
    series.push_back({{"src", s.source},
                      {"dst", s.destination},
                      {"port", s.port},
                      {"route", s.route},
                      {"classes", classes},
                      {"buckets", buckets},
                      {"sum_s", s.sum_s},
                      {"count", s.count},
                      {"retries", s.retries}});
  }
  return {{"series", series}, {"series_dropped", dropped}};
}

}  // namespace shunt::proxy

namespace shunt::proxy {

void RequestMetrics::AddRecent(const Destination& client, const Destination& server,
                               absl::string_view route, int status, int64_t micros, int retries,
                               bool denied) {
  thread_local std::string key;
  key.clear();
  key.append(reinterpret_cast<const char*>(client.addr.data()), client.addr.size());
  key.append(reinterpret_cast<const char*>(server.addr.data()), server.addr.size());
  key.push_back(static_cast<char>(client.family == AF_INET6));
  key.push_back(static_cast<char>(server.family == AF_INET6));
  key.push_back(static_cast<char>(server.port >> 8));
  key.push_back(static_cast<char>(server.port & 0xff));
  key.append(route.data(), route.size());
  const uint64_t ns = static_cast<uint64_t>(std::max<int64_t>(micros, 0)) * 1000;
  const size_t cls = status >= 100 && status < 600 ? static_cast<size_t>(status / 100) : 0;
  Shard& shard = ShardOfThisThread();
  std::lock_guard<std::mutex> lock(shard.mu);
  auto it = shard.recent.find(key);
  if (it == shard.recent.end()) {
    if (!Admit(recent_keys_, key, kMaxRecent)) {
      ++shard.recent_dropped;
      return;
    }
    it = shard.recent.emplace(key, Recent{}).first;
    it->second.client = client;
    it->second.server = server;
    it->second.route = std::string(route);
  }
  Recent& r = it->second;
  ++r.by_class[cls];
  r.denied += denied;
  r.retries += static_cast<uint64_t>(std::max(retries, 0));
  r.sum_ns += ns;
  ++r.hist[shunt_hist_bucket(ns)];
}

nlohmann::json RequestMetrics::TakeRecent() {
  absl::flat_hash_map<std::string, Recent> taken;
  uint64_t dropped = 0;
  // A new window, at one instant for all shards: every shard's lock (in
  // order; a thread holds only its own), then the keys, so that no window
  // holds more than kMaxRecent series and none is lost or counted twice.
  std::array<absl::flat_hash_map<std::string, Recent>, kShards> windows;
  {
    std::array<std::unique_lock<std::mutex>, kShards> locks;
    for (size_t i = 0; i < kShards; ++i) locks[i] = std::unique_lock<std::mutex>(shards_[i].mu);
    std::lock_guard<std::mutex> lock(keys_mu_);
    recent_keys_.keys.clear();
    recent_keys_.full.store(false, std::memory_order_release);
    for (size_t i = 0; i < kShards; ++i) {
      windows[i].swap(shards_[i].recent);
      dropped += std::exchange(shards_[i].recent_dropped, 0);
    }
  }
  for (auto& mine : windows) {
    for (auto& [key, r] : mine) {
      auto [it, fresh] = taken.try_emplace(key, std::move(r));
      if (fresh) continue;
      Recent& m = it->second;
      for (size_t i = 0; i < m.by_class.size(); ++i) m.by_class[i] += r.by_class[i];
      for (size_t i = 0; i < m.hist.size(); ++i) m.hist[i] += r.hist[i];
      m.denied += r.denied;
      m.retries += r.retries;
      m.sum_ns += r.sum_ns;
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, r] : taken) {
    nlohmann::json hist = nlohmann::json::array();
    for (size_t b = 0; b < r.hist.size(); ++b)
      if (r.hist[b]) hist.push_back({b, r.hist[b]});
    out.push_back({{"client", r.client.AddressText()},
                   {"server", r.server.AddressText()},
                   {"port", r.server.port},
                   {"route", r.route},
                   {"classes", r.by_class},
                   {"denied", r.denied},
                   {"retries", r.retries},
                   {"hist", std::move(hist)},
                   {"sum_ns", r.sum_ns}});
  }
  return {{"requests", std::move(out)}, {"dropped", dropped}};
}

}  // namespace shunt::proxy
