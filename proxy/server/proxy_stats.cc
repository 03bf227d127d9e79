#include "proxy/server/proxy_stats.h"

#include <time.h>

namespace shunt::proxy {

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
    counters[kStatNames[i]] = v_[i].load(std::memory_order_relaxed);
  nlohmann::json events = nlohmann::json::array();
  std::lock_guard<std::mutex> lock(mu_);
  for (const RefusalEvent& e : pending_)
    events.push_back({{"reason", e.reason},
                      {"peer", e.peer},
                      {"source", e.source},
                      {"destination", e.destination},
                      {"unix_ms", e.unix_ms}});
  pending_.clear();
  return {{"counters", counters},
          {"refusals", refusals_},
          {"refusal_events", events},
          {"refusal_events_lost", events_lost_}};
}

}  // namespace shunt::proxy
