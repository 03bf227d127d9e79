#include "flow_aggregator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string_view>

namespace shunt::telemetry {

void FlowAggregator::SetDirectory(std::shared_ptr<const PeerDirectory> d) {
  std::lock_guard<std::mutex> l(mu_);
  directory_ = std::move(d);
}

void FlowAggregator::SetRuleNames(std::shared_ptr<const std::map<uint32_t, std::string>> names) {
  std::lock_guard<std::mutex> l(mu_);
  rule_names_ = std::move(names);
}

FlowView FlowAggregator::Name(const FlowRecord& f) const {
  FlowView v;
  v.raw = f;
  v.start_wall_ns = MonotonicToWall(f.start_ns, *opts_.clock);
  v.end_wall_ns = MonotonicToWall(f.end_ns, *opts_.clock);
  v.client = directory_->Find(f.key.client_ip4);
  v.server = directory_->Find(f.key.server_ip4);
  if (rule_names_ && f.rule_id) {
    auto it = rule_names_->find(f.rule_id);
    if (it != rule_names_->end()) v.rule = it->second;
  }
  return v;
}

FlowView FlowAggregator::Describe(const FlowRecord& f) const {
  std::lock_guard<std::mutex> l(mu_);
  return Name(f);
}

EdgeStats& FlowAggregator::EdgeFor(const FlowView& v, int64_t now_wall) {
  EdgeKey k{v.client.namespace_,         v.client.workload, v.client.service_account,
            v.server.namespace_,         v.server.workload, v.server.service_account,
            ntohs(v.raw.key.server_port)};
  auto it = edges_.find(k);
  if (it != edges_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.second);
  } else {
    if (edges_.size() >= opts_.max_edges && !lru_.empty()) {
      edges_.erase(lru_.back());
      lru_.pop_back();
      ++totals_.edges_evicted;
    }
    lru_.push_front(k);
    it = edges_.emplace(std::move(k), std::make_pair(EdgeStats{}, lru_.begin())).first;
  }
  EdgeStats& s = it->second.first;
  s.last_wall_ns = now_wall;
  return s;
}

void FlowAggregator::AddToWindow(const FlowView& v, bool success, bool failure, int64_t now_wall) {
  const int64_t index = now_wall / 1000000000 / kSliceSeconds;
  constexpr int64_t kSlices = kMaxWindowSeconds / kSliceSeconds;
  // Once a slice: forget pod edges with nothing in the last minute.
  if (index > last_prune_index_) {
    last_prune_index_ = index;
    for (auto it = pod_edges_.begin(); it != pod_edges_.end();) {
      if (it->second.slices.empty() || it->second.slices.back().index + kSlices <= index) {
        pod_lru_.erase(it->second.lru);
        pod_edges_.erase(it++);
      } else {
        ++it;
      }
    }
  }
  PodEdgeKey k{v.client.namespace_, v.client.pod, v.client.workload,
               v.server.namespace_, v.server.pod, v.server.workload};
  auto it = pod_edges_.find(k);
  if (it == pod_edges_.end()) {
    if (pod_edges_.size() >= opts_.max_pod_edges && !pod_lru_.empty()) {
      // Full: the least recently touched edge makes room.
      pod_edges_.erase(pod_lru_.back());
      pod_lru_.pop_back();
      ++totals_.pod_edges_evicted;
    }
    pod_lru_.push_front(k);
    it = pod_edges_.emplace(std::move(k), PodEdge{{}, pod_lru_.begin()}).first;
  } else {
    pod_lru_.splice(pod_lru_.begin(), pod_lru_, it->second.lru);
  }
  // Records from the flow thread and denials from the main loop can arrive
  // slightly out of time order: find (or insert) the slice by its index.
  auto& slices = it->second.slices;
  auto pos = slices.end();
  while (pos != slices.begin() && std::prev(pos)->index > index) --pos;
  if (pos == slices.begin() || std::prev(pos)->index != index) {
    if (!slices.empty() && index + kSlices <= slices.back().index) return;  // older than the window
    pos = slices.insert(pos, Slice{});
    pos->index = index;
  } else {
    --pos;
  }
  Slice& s = *pos;
  s.successes += success;
  s.failures += failure;
  if ((success || failure) && (v.raw.flags & SHUNT_FLOW_F_MTLS)) ++s.mtls;
  s.response_sum_ns += v.raw.rr_sum_ns;
  for (unsigned b = 0; b < SHUNT_HIST_BUCKETS; ++b) s.response[b] += v.raw.rr_hist[b];
  while (!slices.empty() && slices.front().index + kSlices <= slices.back().index)
    slices.pop_front();
}

void FlowAggregator::Remember(FlowView v) {
  v.seq = next_seq_++;
  recent_.push_back(std::move(v));
  while (recent_.size() > opts_.recent_flows) recent_.pop_front();
}

void FlowAggregator::AddTraffic(const FlowView& amounts, EdgeStats& s, int64_t now_wall) {
  s.bytes_to_server += amounts.raw.bytes[0];
  s.bytes_to_client += amounts.raw.bytes[1];
  if (amounts.raw.rr_count) s.response.AddBuckets(amounts.raw.rr_hist, amounts.raw.rr_sum_ns);
  if (amounts.raw.rr_count) AddToWindow(amounts, false, false, now_wall);
}

void FlowAggregator::Ingest(const FlowRecord& f) {
  // The L7 proxy's leg to the pod: the client's own record counts the
  // exchange (docs/l7.md).
  if (f.flags & SHUNT_FLOW_F_L7_UPSTREAM) return;
  std::lock_guard<std::mutex> l(mu_);
  FlowView v = Name(f);
  EdgeStats& s = EdgeFor(v, v.end_wall_ns);
  ++s.flows;
  switch (f.end) {
    case SHUNT_FLOW_CLOSED:
      ++s.successes;
      break;
    case SHUNT_FLOW_RESET:
      ++s.reset;
      break;
    case SHUNT_FLOW_REFUSED:
      ++s.refused;
      break;
    case SHUNT_FLOW_DENIED_END:
      ++s.denied;
      break;
    default:
      break;
  }
  if (f.verdict == SHUNT_FLOW_AUDIT) ++s.audit;
  if (std::string_view(PathName(f)) == "short-circuit") ++s.short_circuited;
  if (f.flags & SHUNT_FLOW_F_MTLS) ++s.mtls;
  if (f.connect_ns) s.connect.Add(f.connect_ns);
  {
    const uint64_t server = ServerKey(f.key.server_ip4, ntohs(f.key.server_port));
    auto it = flows_to_.find(server);
    if (it != flows_to_.end())
      ++it->second;
    else if (flows_to_.size() < kMaxServers)
      flows_to_.emplace(server, 1);
  }
  // What live looks did not count yet.
  FlowView rest = v;
  ServerSamples* samples = SamplesFor(f.key);
  if (auto it = live_.find(FlowInstance{f.key, f.start_ns}); it != live_.end()) {
    const Folded& d = it->second;
    rest.raw.bytes[0] -= std::min<uint64_t>(d.bytes[0], rest.raw.bytes[0]);
    rest.raw.bytes[1] -= std::min<uint64_t>(d.bytes[1], rest.raw.bytes[1]);
    rest.raw.rr_sum_ns -= std::min<uint64_t>(d.rr_sum_ns, rest.raw.rr_sum_ns);
    rest.raw.rr_count -= std::min<uint64_t>(d.rr_count, rest.raw.rr_count);
    for (unsigned b = 0; b < SHUNT_HIST_BUCKETS; ++b)
      rest.raw.rr_hist[b] -= std::min(d.rr_hist[b], rest.raw.rr_hist[b]);
    live_.erase(it);
  }
  s.bytes_to_server += rest.raw.bytes[0];
  s.bytes_to_client += rest.raw.bytes[1];
  s.response.AddBuckets(rest.raw.rr_hist, rest.raw.rr_sum_ns);
  if (samples) {
    samples->rr_sum_ns += rest.raw.rr_sum_ns;
    samples->rr_count += rest.raw.rr_count;
    if (f.connect_ns) {
      samples->connect_sum_ns += f.connect_ns;
      ++samples->connect_count;
    }
    // A reset with bytes sent and none back: the request went unanswered.
    if (f.end == SHUNT_FLOW_REFUSED ||
        (f.end == SHUNT_FLOW_RESET && f.bytes[0] > 0 && f.bytes[1] == 0))
      ++samples->failures;
  }
  ++totals_.flows;
  AddToWindow(
      rest, f.end == SHUNT_FLOW_CLOSED,
      f.end == SHUNT_FLOW_RESET || f.end == SHUNT_FLOW_REFUSED || f.end == SHUNT_FLOW_DENIED_END,
      v.end_wall_ns);
  Remember(std::move(v));
}

void FlowAggregator::IngestLive(const FlowRecord& f, int64_t now_wall_ns, uint64_t scan) {
  if (f.flags & SHUNT_FLOW_F_L7_UPSTREAM) return;  // as in Ingest
  std::lock_guard<std::mutex> l(mu_);
  if (shunt_flow_open_ends(f.flags)) {
    // A server already counted keeps counting when the table is full.
    const uint64_t server = ServerKey(f.key.server_ip4, ntohs(f.key.server_port));
    if (auto it = open_scanning_.find(server); it != open_scanning_.end())
      ++it->second;
    else if (open_scanning_.size() < kMaxServers)
      open_scanning_.emplace(server, 1);
  }
  Folded& d = live_[FlowInstance{f.key, f.start_ns}];
  d.last_scan = scan;
  if (f.bytes[0] == d.bytes[0] && f.bytes[1] == d.bytes[1] && f.rr_count == d.rr_count) return;
  FlowView delta = Name(f);
  delta.raw.bytes[0] = f.bytes[0] - std::min<uint64_t>(d.bytes[0], f.bytes[0]);
  delta.raw.bytes[1] = f.bytes[1] - std::min<uint64_t>(d.bytes[1], f.bytes[1]);
  delta.raw.rr_sum_ns = f.rr_sum_ns - std::min<uint64_t>(d.rr_sum_ns, f.rr_sum_ns);
  delta.raw.rr_count = f.rr_count - std::min<uint64_t>(d.rr_count, f.rr_count);
  for (unsigned b = 0; b < SHUNT_HIST_BUCKETS; ++b)
    delta.raw.rr_hist[b] = f.rr_hist[b] - std::min(d.rr_hist[b], f.rr_hist[b]);
  d.bytes[0] = f.bytes[0];
  d.bytes[1] = f.bytes[1];
  d.rr_sum_ns = f.rr_sum_ns;
  d.rr_count = f.rr_count;
  std::memcpy(d.rr_hist, f.rr_hist, sizeof(d.rr_hist));
  if (ServerSamples* samples = SamplesFor(f.key)) {
    samples->rr_sum_ns += delta.raw.rr_sum_ns;
    samples->rr_count += delta.raw.rr_count;
  }
  EdgeStats& s = EdgeFor(delta, now_wall_ns);
  AddTraffic(delta, s, now_wall_ns);
}

FlowAggregator::ServerSamples* FlowAggregator::SamplesFor(const shunt_flow_key& k) {
  const uint64_t server = ServerKey(k.server_ip4, ntohs(k.server_port));
  auto it = server_samples_.find(server);
  if (it != server_samples_.end()) return &it->second;
  if (server_samples_.size() >= kMaxServers) return nullptr;
  return &server_samples_[server];
}

absl::flat_hash_map<uint64_t, FlowAggregator::ServerSamples> FlowAggregator::TakeServerSamples() {
  std::lock_guard<std::mutex> l(mu_);
  absl::flat_hash_map<uint64_t, ServerSamples> out;
  out.swap(server_samples_);
  return out;
}

absl::flat_hash_map<uint64_t, uint32_t> FlowAggregator::OpenByServer() const {
  std::lock_guard<std::mutex> l(mu_);
  return open_by_server_;
}

void FlowAggregator::EndScan(uint64_t scan) {
  std::lock_guard<std::mutex> l(mu_);
  open_by_server_.swap(open_scanning_);
  open_scanning_.clear();
  for (auto it = live_.begin(); it != live_.end();) {
    if (it->second.last_scan + 3 <= scan)
      live_.erase(it++);
    else
      ++it;
  }
}

void FlowAggregator::IngestDenial(const shunt_deny_event& e, int64_t wall_ns) {
  if ((e.type != SHUNT_EVENT_POLICY_DENY && e.type != SHUNT_EVENT_POLICY_DENY_L7) || !e.enforced ||
      e.proto != 6 /* TCP */)
    return;
  std::lock_guard<std::mutex> l(mu_);
  if (e.hook == SHUNT_HOOK_TC || e.hook == SHUNT_HOOK_TC_FROM_POD) {
    // A dropped SYN is retried for about two minutes: one flow, not seven.
    auto key = std::make_tuple(e.saddr, e.sport, e.daddr, e.dport);
    auto [it, inserted] = recent_denials_.try_emplace(key, wall_ns);
    const bool retry = !inserted && wall_ns - it->second < int64_t{180} * 1000000000;
    it->second = wall_ns;
    if (recent_denials_.size() > 4096) {
      for (auto d = recent_denials_.begin(); d != recent_denials_.end();) {
        if (wall_ns - d->second > int64_t{180} * 1000000000)
          recent_denials_.erase(d++);
        else
          ++d;
      }
      if (recent_denials_.size() > 4096) recent_denials_.clear();  // bounded, at worst a recount
    }
    if (retry) return;
  }
  FlowRecord f{};
  f.key.client_ip4 = e.saddr;
  f.key.server_ip4 = e.daddr;
  f.key.client_port = e.sport;
  f.key.server_port = e.dport;
  f.src_identity = e.src_identity;
  f.dst_identity = e.dst_identity;
  f.verdict = SHUNT_FLOW_DENIED;
  f.end = SHUNT_FLOW_DENIED_END;
  f.start_ns = f.end_ns = e.ts_ns;
  FlowView v = Name(f);
  v.start_wall_ns = v.end_wall_ns = wall_ns;
  EdgeStats& s = EdgeFor(v, wall_ns);
  ++s.flows;
  ++s.denied;
  ++totals_.denials;
  AddToWindow(v, false, true, wall_ns);
  Remember(std::move(v));
}

std::vector<FlowView> FlowAggregator::Since(uint64_t after, size_t limit) const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<FlowView> out;
  // seq is dense: skip straight to the first wanted one.
  const uint64_t first = recent_.empty() ? 0 : recent_.front().seq;
  size_t i = after >= first ? static_cast<size_t>(after - first + 1) : 0;
  for (; i < recent_.size() && out.size() < limit; ++i) out.push_back(recent_[i]);
  return out;
}

uint64_t FlowAggregator::last_seq() const {
  std::lock_guard<std::mutex> l(mu_);
  return next_seq_ - 1;
}

std::vector<std::pair<EdgeKey, EdgeStats>> FlowAggregator::Edges() const {
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<EdgeKey, EdgeStats>> out;
  out.reserve(edges_.size());
  for (const auto& [k, v] : edges_) out.emplace_back(k, v.first);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return out;
}

std::vector<std::pair<PodEdgeKey, WindowTotals>> FlowAggregator::Window(int64_t now_wall_ns,
                                                                        int window_s) const {
  window_s = std::clamp(window_s, 1, kMaxWindowSeconds);
  const int64_t now_index = now_wall_ns / 1000000000 / kSliceSeconds;
  const int64_t first = now_index - (window_s + kSliceSeconds - 1) / kSliceSeconds + 1;
  std::lock_guard<std::mutex> l(mu_);
  std::vector<std::pair<PodEdgeKey, WindowTotals>> out;
  for (const auto& [k, e] : pod_edges_) {
    WindowTotals t;
    bool any = false;
    for (const Slice& s : e.slices) {
      if (s.index < first || s.index > now_index) continue;
      any = true;
      t.successes += s.successes;
      t.failures += s.failures;
      t.flows += s.successes + s.failures;
      t.mtls += s.mtls;
      t.response.AddBuckets(s.response, s.response_sum_ns);
    }
    if (any) out.emplace_back(k, std::move(t));
  }
  return out;
}

uint64_t FlowAggregator::FlowsTo(uint32_t ip_be, uint16_t port) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = flows_to_.find(ServerKey(ip_be, port));
  return it == flows_to_.end() ? 0 : it->second;
}

FlowAggregator::Totals FlowAggregator::totals() const {
  std::lock_guard<std::mutex> l(mu_);
  Totals t = totals_;
  t.edges = edges_.size();
  t.recent = recent_.size();
  t.pod_edges = pod_edges_.size();
  return t;
}

}  // namespace shunt::telemetry
