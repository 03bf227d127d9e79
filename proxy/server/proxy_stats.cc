#include "proxy/server/proxy_stats.h"

#include <time.h>

namespace shunt::proxy {

uint64_t ProxyStats::Get(Stat s) const {
  uint64_t sum = 0;
  for (const Shard& shard : shards_)
    sum += shard.v[static_cast<size_t>(s)].load(std::memory_order_relaxed);
  return sum;
}

void ProxyStats::Refuse(RefusalEvent e) {
  if (e.unix_ms == 0) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    e.unix_ms = static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++refusals_[e.reason];
  if (pending_.size() >= 1000) {
    ++events_lost_;
    return;
  }
  pending_.push_back(std::move(e));
}

nlohmann::json ProxyStats::TakeReport() {
  nlohmann::json counters = nlohmann::json::object();
  for (size_t i = 0; i < std::size(kStatNames); ++i)
    counters[kStatNames[i]] = Get(static_cast<Stat>(i));
  nlohmann::json events = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const RefusalEvent& e : pending_) {
    nlohmann::json j = {{"reason", e.reason},    {"peer", e.peer},
                        {"source", e.source},    {"destination", e.destination},
                        {"unix_ms", e.unix_ms},  {"type", e.type},
                        {"enforced", e.enforced}};
    for (const auto& [k, v] :
         {std::pair{"route", &e.route}, std::pair{"method", &e.method}, std::pair{"path", &e.path},
          std::pair{"destination_identity", &e.destination_identity}})
      if (!v->empty()) j[k] = *v;
    events.push_back(std::move(j));
  }
  pending_.clear();
  return {{"counters", counters},
          {"refusals", refusals_},
          {"refusal_events", events},
          {"refusal_events_lost", events_lost_}};
}

}  // namespace shunt::proxy
