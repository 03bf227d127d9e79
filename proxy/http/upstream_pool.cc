#include "proxy/http/upstream_pool.h"

#include <sys/socket.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace shunt::proxy::http {
namespace {

// Idle and clean: nothing to read (a server's close or unasked bytes
// would be), no error.
bool StillIdle(int fd) {
  char c;
  const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

std::string UpstreamPool::Route(const Destination& source, const Destination& to) {
  return absl::StrCat(source.AddressText(), ">", to.ToAuthority());
}

bool UpstreamPool::Park(const Destination& source, const Destination& to, lib::UniqueFd fd,
                        bool via_pair) {
  if (!fd.valid()) return false;
  const Clock::time_point now = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - last_expiry_ >= std::chrono::seconds(1)) ExpireLocked(now);
    if (total_ >= options_.max_total) return false;
    std::deque<Entry>& entries = routes_[Route(source, to)];
    if (entries.size() >= options_.max_per_route) return false;
    entries.push_back({.fd = std::move(fd), .via_pair = via_pair, .parked_at = now});
    ++total_;
  }
  if (options_.on_park) options_.on_park();
  return true;
}

UpstreamPool::Taken UpstreamPool::Take(const Destination& source, const Destination& to) {
  const Clock::time_point now = Clock::now();
  Taken taken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (now - last_expiry_ >= std::chrono::seconds(1)) ExpireLocked(now);
    auto it = routes_.find(Route(source, to));
    if (it == routes_.end()) return {};
    std::deque<Entry>& entries = it->second;
    while (!entries.empty() && !taken.fd.valid()) {
      Entry e = std::move(entries.back());
      entries.pop_back();
      --total_;
      if (!StillIdle(e.fd.get())) continue;  // closed as it goes
      taken = {.fd = std::move(e.fd), .via_pair = e.via_pair};
    }
    if (entries.empty()) routes_.erase(it);
  }
  if (taken.fd.valid() && options_.on_reuse) options_.on_reuse();
  return taken;
}

void UpstreamPool::Expire(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  ExpireLocked(now);
}

void UpstreamPool::ExpireLocked(Clock::time_point now) {
  last_expiry_ = now;
  for (auto it = routes_.begin(); it != routes_.end();) {
    std::deque<Entry>& entries = it->second;
    while (!entries.empty() && now - entries.front().parked_at >= options_.max_idle) {
      entries.pop_front();  // closes it
      --total_;
    }
    it = entries.empty() ? routes_.erase(it) : std::next(it);
  }
}

size_t UpstreamPool::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return total_;
}

}  // namespace shunt::proxy::http
