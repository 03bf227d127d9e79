#include "lb_score_writer.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "agent/lib/ip.h"

namespace shunt::services {
namespace {

shunt_backend KernelKey(const BackendAddr& b) {
  shunt_backend k{};
  k.ip = b.ip_be;
  k.port = htons(b.port);
  return k;
}

}  // namespace

absl::Status LbScoreWriter::Load() {
  auto entries = map_->Entries();
  if (!entries.ok()) return entries.status();
  for (const auto& [k, v] : *entries) written_[BackendAddr{k.ip, ntohs(k.port)}] = v.score;
  return absl::OkStatus();
}

lib::DiffReport LbScoreWriter::Write(const Plan& plan, const LatencyScorer& scorer,
                                     int64_t now_ns) {
  lib::DiffReport r;
  absl::flat_hash_map<BackendAddr, uint32_t> want;
  for (const ServiceEntry& e : plan.entries) {
    if (e.lb != SHUNT_LB_P2C_EWMA) continue;
    for (const Backend& b : e.backends) {
      const BackendAddr a{b.ip_be, b.port};
      want.emplace(a, scorer.Score(a, now_ns));
    }
  }
  for (const auto& [b, score] : want) {
    auto it = written_.find(b);
    if (it != written_.end() && it->second == score) {
      ++r.unchanged;
      continue;
    }
    const shunt_lb_score v{score, 0};
    if (absl::Status s = map_->Update(KernelKey(b), v); !s.ok()) {
      // Full: the backend has no score, so it counts as never measured.
      r.errors.push_back(
          absl::StrCat("lb score ", lib::Ipv4String(b.ip_be), ":", b.port, ": ", s.message()));
      continue;
    }
    written_[b] = score;
    ++r.written;
  }
  for (auto it = written_.begin(); it != written_.end();) {
    if (want.contains(it->first)) {
      ++it;
      continue;
    }
    if (absl::Status s = map_->Delete(KernelKey(it->first)); !s.ok()) {
      r.errors.push_back(absl::StrCat("lb score ", lib::Ipv4String(it->first.ip_be), ":",
                                      it->first.port, ": ", s.message()));
      ++it;
      continue;
    }
    ++r.deleted;
    written_.erase(it++);
  }
  return r;
}

}  // namespace shunt::services
