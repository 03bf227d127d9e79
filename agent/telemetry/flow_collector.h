// Drains the kernel's ring buffer of finished flows into a FlowAggregator,
// on a thread of its own: a slow reconcile on the agent's main loop must not
// let the ring fill up (8 MiB hold ~9,000 records with histograms, 45 ms at
// 200,000 a second).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_record.h"

struct ring_buffer;

namespace shunt::telemetry {

class FlowCollector {
 public:
  // With `flows_map_fd` (the live flows map; -1 for none) and
  // `hists_map_fd` (their histograms), live records are looked at once a
  // second too (FlowAggregator::IngestLive), on the same thread, so a live
  // look and a flow's final record never interleave.
  static absl::StatusOr<std::unique_ptr<FlowCollector>> Start(int ringbuf_fd, FlowAggregator* into,
                                                              int flows_map_fd = -1,
                                                              int hists_map_fd = -1);
  ~FlowCollector();  // stops the thread, after draining what is ready

  uint64_t records() const { return records_.load(std::memory_order_relaxed); }
  uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }
  uint64_t live_scans() const { return scans_.load(std::memory_order_relaxed); }
  uint64_t live_scan_errors() const { return scan_errors_.load(std::memory_order_relaxed); }

 private:
  FlowCollector() = default;
  static int OnRecord(void* ctx, void* data, size_t size);
  void Loop();
  void ScanLive();

  ring_buffer* rb_ = nullptr;
  FlowAggregator* into_ = nullptr;
  int flows_fd_ = -1, hists_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> records_{0}, malformed_{0}, scans_{0}, scan_errors_{0};
  std::thread thread_;
};

}  // namespace shunt::telemetry
