#include "agent/telemetry/request_windows.h"

#include <arpa/inet.h>

#include <algorithm>

namespace shunt::telemetry {
namespace {

constexpr int64_t kSlices = FlowAggregator::kMaxWindowSeconds / FlowAggregator::kSliceSeconds;

int64_t SliceIndex(int64_t wall_ns) { return wall_ns / 1000000000 / FlowAggregator::kSliceSeconds; }

// A count from the report (a whole number, not negative), or false.
bool Count(const nlohmann::json& j, uint64_t* out) {
  if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0)) return false;
  *out = j.get<uint64_t>();
  return true;
}

}  // namespace

uint64_t RequestTotals::requests() const {
  uint64_t n = 0;
  for (uint64_t c : by_class) n += c;
  return n;
}

void RequestTotals::Merge(const RequestTotals& o) {
  for (size_t i = 0; i < by_class.size(); ++i) by_class[i] += o.by_class[i];
  denied += o.denied;
  retries += o.retries;
  latency.Merge(o.latency);
}

void RequestWindows::SetDirectory(std::shared_ptr<const PeerDirectory> d) {
  std::lock_guard<std::mutex> l(mu_);
  directory_ = std::move(d);
}

void RequestWindows::Prune(int64_t index) {
  if (index <= last_prune_index_) return;
  last_prune_index_ = index;
  for (auto it = series_.begin(); it != series_.end();) {
    auto& slices = it->second.slices;
    while (!slices.empty() && slices.front().index + kSlices <= index) slices.pop_front();
    if (slices.empty())
      series_.erase(it++);
    else
      ++it;
  }
}

void RequestWindows::Ingest(const nlohmann::json& recent, int64_t now_wall_ns) {
  if (!recent.is_array()) return;
  const int64_t index = SliceIndex(now_wall_ns);
  std::lock_guard<std::mutex> l(mu_);
  Prune(index);
  for (const auto& e : recent) {
    // Everything checked before anything counts: a bad entry counts nowhere.
    Slice add;
    add.index = index;
    in_addr client{}, server{};
    const auto classes = e.is_object() ? e.find("classes") : e.end();
    const auto hist = e.is_object() ? e.find("hist") : e.end();
    uint64_t port = 0;
    bool ok = e.is_object() && classes != e.end() && classes->is_array() &&
              classes->size() == add.by_class.size() && hist != e.end() && hist->is_array() &&
              e.value("route", nlohmann::json()).is_string() &&
              Count(e.value("port", nlohmann::json()), &port) && port <= 65535 &&
              e.value("client", nlohmann::json()).is_string() &&
              e.value("server", nlohmann::json()).is_string() &&
              inet_pton(AF_INET, e["client"].get_ref<const std::string&>().c_str(), &client) == 1 &&
              inet_pton(AF_INET, e["server"].get_ref<const std::string&>().c_str(), &server) == 1 &&
              Count(e.value("denied", nlohmann::json()), &add.denied) &&
              Count(e.value("retries", nlohmann::json()), &add.retries) &&
              Count(e.value("sum_ns", nlohmann::json()), &add.sum_ns);
    for (size_t i = 0; ok && i < add.by_class.size(); ++i)
      ok = Count((*classes)[i], &add.by_class[i]);
    uint64_t in_hist = 0;
    for (size_t i = 0; ok && i < hist->size(); ++i) {
      const auto& p = (*hist)[i];
      uint64_t bucket = 0, n = 0;
      ok = p.is_array() && p.size() == 2 && Count(p[0], &bucket) && Count(p[1], &n) &&
           bucket < SHUNT_HIST_BUCKETS && n <= UINT32_MAX;
      if (ok) add.hist[bucket] += static_cast<uint32_t>(n), in_hist += n;
    }
    uint64_t total = 0;
    for (uint64_t c : add.by_class) total += c;
    // Every request has one latency sample; a policy denial is a 4xx.
    if (!ok || in_hist != total || add.denied > add.by_class[4]) {
      ++malformed_;
      continue;
    }
    const Peer& c = directory_->Find(client.s_addr);
    const Peer& s = directory_->Find(server.s_addr);
    RouteEdgeKey key{.edge = {c.namespace_, c.pod, c.workload, s.namespace_, s.pod, s.workload},
                     .port = static_cast<uint16_t>(port),
                     .route = e.value("route", "")};
    auto it = series_.find(key);
    if (it == series_.end()) {
      if (series_.size() >= kMaxKeys) {
        // Full: the least recently active route edge makes room.
        auto oldest = std::min_element(
            series_.begin(), series_.end(),
            [](const auto& a, const auto& b) { return a.second.last_index < b.second.last_index; });
        series_.erase(oldest);
        ++evicted_;
      }
      it = series_.emplace(std::move(key), Series{}).first;
    }
    Series& series = it->second;
    series.last_index = index;
    if (series.slices.empty() || series.slices.back().index < index) {
      series.slices.push_back(Slice{});
      series.slices.back().index = index;
    }
    Slice& into = series.slices.back();
    for (size_t i = 0; i < into.by_class.size(); ++i) into.by_class[i] += add.by_class[i];
    into.denied += add.denied;
    into.retries += add.retries;
    into.sum_ns += add.sum_ns;
    for (unsigned b = 0; b < SHUNT_HIST_BUCKETS; ++b) into.hist[b] += add.hist[b];
    while (series.slices.size() > static_cast<size_t>(kSlices)) series.slices.pop_front();
  }
}

std::vector<std::pair<RouteEdgeKey, RequestTotals>> RequestWindows::Window(int64_t now_wall_ns,
                                                                           int window_s) const {
  window_s = std::clamp(window_s, 1, FlowAggregator::kMaxWindowSeconds);
  const int64_t now_index = SliceIndex(now_wall_ns);
  const int64_t first =
      now_index - (window_s + FlowAggregator::kSliceSeconds - 1) / FlowAggregator::kSliceSeconds +
      1;
  std::vector<std::pair<RouteEdgeKey, RequestTotals>> out;
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [k, series] : series_) {
    RequestTotals t;
    bool any = false;
    for (const Slice& s : series.slices) {
      if (s.index < first || s.index > now_index) continue;
      any = true;
      for (size_t i = 0; i < t.by_class.size(); ++i) t.by_class[i] += s.by_class[i];
      t.denied += s.denied;
      t.retries += s.retries;
      t.latency.AddBuckets(s.hist, s.sum_ns);
    }
    if (any) out.emplace_back(k, std::move(t));
  }
  return out;
}

uint64_t RequestWindows::malformed() const {
  std::lock_guard<std::mutex> l(mu_);
  return malformed_;
}

uint64_t RequestWindows::evicted() const {
  std::lock_guard<std::mutex> l(mu_);
  return evicted_;
}

std::vector<std::pair<PodEdgeKey, WindowTotals>> MergeRequests(
    std::vector<std::pair<PodEdgeKey, WindowTotals>> flows,
    const std::vector<std::pair<RouteEdgeKey, RequestTotals>>& requests) {
  absl::flat_hash_map<PodEdgeKey, RequestTotals> by_edge;
  for (const auto& [k, t] : requests) by_edge[k.edge].Merge(t);
  for (auto& [k, t] : flows) {
    auto it = by_edge.find(k);
    if (it == by_edge.end()) continue;
    t.successes = it->second.successes();
    t.failures = it->second.failures();
    t.response = it->second.latency;
    t.per_request = true;
    by_edge.erase(it);
  }
  for (auto& [k, r] : by_edge) {
    WindowTotals t;
    t.successes = r.successes();
    t.failures = r.failures();
    t.response = std::move(r.latency);
    t.per_request = true;
    flows.emplace_back(k, std::move(t));
  }
  return flows;
}

}  // namespace shunt::telemetry
