#include "deny_log.h"

#include <bpf/libbpf.h>
#include <time.h>

#include <cstring>

#include "agent/lib/clock.h"
#include "agent/lib/errno_status.h"

namespace shunt::policy {
namespace {

int64_t NowNs(clockid_t c) {
  timespec ts{};
  clock_gettime(c, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace

absl::StatusOr<std::unique_ptr<DenyLog>> DenyLog::Create(int ringbuf_fd, size_t keep) {
  std::unique_ptr<DenyLog> log(new DenyLog());
  log->keep_ = keep;
  log->rb_ = ring_buffer__new(ringbuf_fd, &DenyLog::OnEvent, log.get(), nullptr);
  if (!log->rb_) return lib::ErrnoStatus(errno, "bpf: open the denial ring buffer");
  return log;
}

DenyLog::~DenyLog() {
  if (rb_) ring_buffer__free(rb_);
}

int DenyLog::fd() const { return ring_buffer__epoll_fd(rb_); }

void DenyLog::Consume() { ring_buffer__consume(rb_); }

bool DecodeDenyEvent(const void* data, size_t size, int64_t realtime_ns, int64_t monotonic_ns,
                     LoggedDenial* out) {
  if (size < sizeof(shunt_deny_event)) return false;
  std::memcpy(&out->event, data, sizeof(out->event));
  out->ipv6 = false;
  out->saddr6 = out->daddr6 = shunt_ip6{};
  if (size >= sizeof(shunt_deny_event6)) {
    shunt_deny_event6 e6;
    std::memcpy(&e6, data, sizeof(e6));
    out->ipv6 = true;
    out->saddr6 = e6.saddr6;
    out->daddr6 = e6.daddr6;
  }
  // The event carries bpf_ktime_get_ns (CLOCK_MONOTONIC); shift it to wall time.
  out->wall_time_ns = lib::MonotonicStampToWall(out->event.ts_ns, monotonic_ns, realtime_ns);
  return true;
}

void DenyLog::Append(LoggedDenial d) {
  d.seq = next_seq_++;
  events_.push_back(std::move(d));
  if (events_.size() > keep_) events_.pop_front();
}

int DenyLog::OnEvent(void* ctx, void* data, size_t size) {
  auto* self = static_cast<DenyLog*>(ctx);
  LoggedDenial d;
  if (!DecodeDenyEvent(data, size, NowNs(CLOCK_REALTIME), NowNs(CLOCK_MONOTONIC), &d))
    return 0;  // not ours: skip, keep going
  d.seq = self->next_seq_++;
  self->events_.push_back(d);
  if (self->events_.size() > self->keep_) self->events_.pop_front();
  return 0;
}

std::vector<LoggedDenial> DenyLog::Since(uint64_t after, size_t limit) const {
  std::vector<LoggedDenial> out;
  if (events_.empty()) return out;
  // Sequence numbers are consecutive in the deque: start at the first one
  // after `after` directly (the agent asks after every drain of the ring,
  // up to tens of thousands of times a second in permissive mode).
  const uint64_t first = events_.front().seq;
  const size_t start = after < first ? 0 : static_cast<size_t>(after - first + 1);
  for (size_t i = start; i < events_.size() && out.size() < limit; ++i) out.push_back(events_[i]);
  return out;
}

}  // namespace shunt::policy
