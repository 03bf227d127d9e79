#include "flow_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "agent/lib/errno_status.h"

namespace shunt::telemetry {

absl::StatusOr<std::unique_ptr<FlowCollector>> FlowCollector::Start(int ringbuf_fd, FlowAggregator* into,
                                                                     int flows_map_fd) {
  std::unique_ptr<FlowCollector> c(new FlowCollector());
  c->into_ = into;
  c->flows_fd_ = flows_map_fd;
  c->rb_ = ring_buffer__new(ringbuf_fd, &FlowCollector::OnRecord, c.get(), nullptr);
  if (!c->rb_) return lib::ErrnoStatus(errno, "bpf: open the flow ring buffer");
  c->thread_ = std::thread([p = c.get()] { p->Loop(); });
  return c;
}

FlowCollector::~FlowCollector() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (rb_) {
    ring_buffer__consume(rb_);
    ring_buffer__free(rb_);
  }
}

void FlowCollector::Loop() {
  // The data path wakes us only once records pile up (flow.bpf.h), so we
  // also look every 10 ms: no record waits longer, and stopping is quick.
  auto next_scan = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!stop_.load(std::memory_order_relaxed)) {
    // poll() consumes only after a wake-up; records written without one
    // are taken by the explicit consume.
    ring_buffer__poll(rb_, 10);
    ring_buffer__consume(rb_);
    if (flows_fd_ >= 0 && std::chrono::steady_clock::now() >= next_scan) {
      ScanLive();
      next_scan = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
  }
}

// Reads the live flows map in batches (one syscall per 256 records).
void FlowCollector::ScanLive() {
  constexpr uint32_t kBatch = 256;
  std::vector<shunt_flow_key> keys(kBatch);
  std::vector<shunt_flow> values(kBatch);
  const uint64_t scan = scans_.fetch_add(1, std::memory_order_relaxed) + 1;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t now = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  shunt_flow_key in{}, out{};
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    const int err = bpf_map_lookup_batch(flows_fd_, first ? nullptr : &in, &out, keys.data(), values.data(),
                                         &count, nullptr);
    const int e = err ? errno : 0;
    for (uint32_t i = 0; i < count; ++i) into_->IngestLive(values[i], now, scan);
    if (err) {
      // ENOENT: the end of the map. Anything else: try again next second.
      if (e != ENOENT) scan_errors_.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    in = out;
    first = false;
  }
  into_->EndScan(scan);
}

int FlowCollector::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<FlowCollector*>(ctx);
  if (size < sizeof(shunt_flow)) {
    self->malformed_.fetch_add(1, std::memory_order_relaxed);
    return 0;  // skip it, keep going
  }
  shunt_flow f;
  std::memcpy(&f, data, sizeof(f));
  self->into_->Ingest(f);
  self->records_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

}  // namespace shunt::telemetry
