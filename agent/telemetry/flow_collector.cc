#include "flow_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <time.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "agent/lib/errno_status.h"

namespace shunt::telemetry {

absl::StatusOr<std::unique_ptr<FlowCollector>> FlowCollector::Start(int ringbuf_fd,
                                                                    FlowAggregator* into,
                                                                    int flows_map_fd,
                                                                    int hists_map_fd) {
  std::unique_ptr<FlowCollector> c(new FlowCollector());
  c->into_ = into;
  c->flows_fd_ = flows_map_fd;
  c->hists_fd_ = hists_map_fd;
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

namespace {

// Reads a flow-keyed map in batches (one syscall per 256 entries), handing
// each entry to `each`. False if the kernel failed before the end.
template <typename V, typename F>
bool ReadBatched(int fd, F each) {
  constexpr uint32_t kBatch = 256;
  std::vector<shunt_flow_key> keys(kBatch);
  std::vector<V> values(kBatch);
  shunt_flow_key in{}, out{};
  bool first = true;
  for (;;) {
    uint32_t count = kBatch;
    const int err = bpf_map_lookup_batch(fd, first ? nullptr : &in, &out, keys.data(),
                                         values.data(), &count, nullptr);
    const int e = err ? errno : 0;
    for (uint32_t i = 0; i < count; ++i) each(keys[i], values[i]);
    if (err) return e == ENOENT;  // ENOENT: the end of the map
    in = out;
    first = false;
  }
}

}  // namespace

// The live flows and the histograms of those that answered requests. A
// failed read is tried again next second.
void FlowCollector::ScanLive() {
  const uint64_t scan = scans_.fetch_add(1, std::memory_order_relaxed) + 1;
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t now = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  // The two maps are read one after the other, so a response may show in
  // one before the other; the flow's final record settles the difference
  // (Ingest counts only what live looks did not).
  LiveHists hists;
  if (hists_fd_ >= 0 && !ReadBatched<shunt_flow_hist>(
                            hists_fd_, [&](const shunt_flow_key& k, const shunt_flow_hist& h) {
                              hists[FlowInstance{k, h.start_ns}] = h;
                            }))
    scan_errors_.fetch_add(1, std::memory_order_relaxed);
  if (!ReadBatched<shunt_flow>(flows_fd_, [&](const shunt_flow_key&, const shunt_flow& f) {
        into_->IngestLive(WithHist(f, hists), now, scan);
      }))
    scan_errors_.fetch_add(1, std::memory_order_relaxed);
  into_->EndScan(scan);
}

int FlowCollector::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<FlowCollector*>(ctx);
  FlowRecord f;
  if (!DecodeFlowEvent(data, size, &f)) {
    self->malformed_.fetch_add(1, std::memory_order_relaxed);
    return 0;  // skip it, keep going
  }
  self->into_->Ingest(f);
  self->records_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

}  // namespace shunt::telemetry
