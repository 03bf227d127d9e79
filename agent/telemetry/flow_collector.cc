#include "flow_collector.h"

#include <bpf/libbpf.h>

#include <cstring>

#include "agent/lib/errno_status.h"

namespace shunt::telemetry {

absl::StatusOr<std::unique_ptr<FlowCollector>> FlowCollector::Start(int ringbuf_fd,
                                                                     FlowAggregator* into) {
  std::unique_ptr<FlowCollector> c(new FlowCollector());
  c->into_ = into;
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
  // A short poll timeout bounds how long stopping takes.
  while (!stop_.load(std::memory_order_relaxed)) ring_buffer__poll(rb_, 100);
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
