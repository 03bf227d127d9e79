// The agent runs its node's shunt-proxy as a child (docs/mtls.md): it
// starts it with one end of a socketpair as the control channel, sends it
// the latest ProxyConfig, learns when it listens ("ready") and what it
// counted, and starts it again with backoff when it dies (100 ms, doubling
// to 10 s; back to 100 ms after it ran for 30 s). Dropping the supervisor
// closes the channel: the proxy then stops accepting and exits once the
// connections it carries are done, so an agent restart drops none.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/lib/unique_fd.h"
#include "nlohmann/json.hpp"
#include "proxy/control/line_channel.h"

namespace shunt::mtls {

struct ProxyLaunch {
  std::string bin;                // --proxy-bin
  std::vector<std::string> args;  // after --control-fd
  std::string cgroup;             // the cgroup to start it in; empty: the agent's
  // Where the running proxy's pid is kept across agent restarts: once a new
  // proxy is ready, the one named there (an earlier agent's, still serving
  // what it carries) is told to drain. Empty: none.
  std::string pid_file;
};

// Where the proxy must run: under the mesh's cgroup root, or the kernel
// neither answers its SO_ORIGINAL_DST nor short-circuits its leg to the
// pod (those programs are attached there). Empty when the agent itself is
// under it (a DaemonSet pod under the node's root); else
// <cgroup_root>/shunt-proxy, made if missing.
absl::StatusOr<std::string> ProxyCgroup(const std::string& cgroup_root);

class ProxySupervisor {
 public:
  explicit ProxySupervisor(ProxyLaunch launch) : launch_(std::move(launch)) {}
  ~ProxySupervisor();
  ProxySupervisor(const ProxySupervisor&) = delete;
  ProxySupervisor& operator=(const ProxySupervisor&) = delete;

  // Starts the proxy when it is not running and its backoff has passed;
  // reads what it said. True when `ready()` changed.
  bool Tick(int64_t now_ms);
  std::vector<int> PollFds() const;
  // The config for the running proxy and every later start.
  void SetConfig(const nlohmann::json& config);

  bool ready() const { return ready_; }
  pid_t pid() const { return pid_; }
  // The proxy's last report (counters, refusals), and the refusal events
  // since the last TakeRefusals().
  const nlohmann::json& last_report() const { return report_; }
  std::vector<nlohmann::json> TakeRefusals();
  // The requests of each report since the last call (each its
  // http_recent.requests array), oldest first.
  std::vector<nlohmann::json> TakeRequests();
  nlohmann::json StatusJson(int64_t now_ms) const;

 private:
  void Start(int64_t now_ms);
  void Reap(int64_t now_ms, const std::string& why);
  void Handle(const nlohmann::json& doc);
  // The new proxy is ready: an earlier agent's proxy stops accepting.
  void RetirePredecessor();

  ProxyLaunch launch_;
  nlohmann::json config_;  // null until the first SetConfig
  pid_t pid_ = -1;
  lib::UniqueFd pidfd_;
  std::unique_ptr<proxy::LineChannel> channel_;
  bool ready_ = false;
  int64_t started_ms_ = 0;
  int64_t next_start_ms_ = 0;
  int64_t backoff_ms_ = 100;
  uint64_t starts_ = 0;
  std::string last_exit_;   // "exited with status 1", "killed by signal 9"
  std::string last_error_;  // what the proxy said before it exited, or a config it rejected
  uint64_t applied_generation_ = 0;
  nlohmann::json report_ = nlohmann::json::object();
  std::vector<nlohmann::json> refusals_;
  std::vector<nlohmann::json> requests_;
  uint64_t requests_dropped_ = 0;  // by the proxy (too many series) or here (not taken)
};

}  // namespace shunt::mtls
