// shunt-proxy: the node's mTLS tunnel (docs/mtls.md). Started and
// supervised by shunt-agent (--mtls), which hands it a socketpair end
// (--control-fd): the agent sends the certificates and address tables as
// they change; the proxy answers "ready" once it listens, and reports its
// counters and refusals every second. When the agent goes away the proxy
// stops accepting and exits once the connections it carries are done, so
// an agent restart drops none of them.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "agent/lib/dashed_flags.h"
#include "agent/lib/fmt_absl.h"
#include "proxy/control/line_channel.h"
#include "proxy/server/worker.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(int, control_fd, -1, "the agent's end of the control channel (inherited)");
ABSL_FLAG(std::string, node_ip, "", "the node's addresses, comma-separated (an IPv4, an IPv6)");
ABSL_FLAG(uint16_t, outbound_port, 15001, "port on the node's addresses for handed-off pods");
ABSL_FLAG(
    uint16_t, l7_port, 15006,
    "port on the node's addresses for connections the kernel sends to the L7 layer (0: none)");
ABSL_FLAG(uint16_t, proxy_inbound_port, 15008, "port on the node's addresses for peers' tunnels");
ABSL_FLAG(std::string, bpffs, "/sys/fs/bpf/shunt", "the agent's bpffs directory (policy maps)");
ABSL_FLAG(int, threads, 0, "worker threads (0: one per CPU the proxy may run on)");
ABSL_FLAG(bool, steer_by_cpu, true,
          "a connection goes to the worker of the CPU its handshake ran on (SO_INCOMING_CPU); "
          "false: spread by SO_REUSEPORT's hash");
ABSL_FLAG(std::string, node, "", "the node's name (the exported spans' k8s.node.name)");
ABSL_FLAG(std::string, trace_otlp_endpoint, "",
          "OTLP/HTTP collector for the L7 layer's spans (base or /v1/traces URL); empty: none");
ABSL_FLAG(int, handshake_timeout_ms, 10000,
          "a tunnel's TCP connect and TLS handshake must complete within this");
ABSL_FLAG(bool, transparent, false,
          "connect to local pods from the remote client pod's address (IP_TRANSPARENT; the agent "
          "sets up the fwmark routing for the replies)");
ABSL_FLAG(int, l7_max_connections, 20000, "L7 connections open at once; more are refused");
ABSL_FLAG(int, l7_max_header_bytes, 65536, "an HTTP head's size (request or response)");
ABSL_FLAG(int, l7_max_headers, 100, "header lines in an HTTP/1.x head");
ABSL_FLAG(int, l7_header_timeout_ms, 10000,
          "a request head must be complete this long after its first byte");
ABSL_FLAG(int, l7_idle_timeout_ms, 60000,
          "an L7 connection with no request in flight closes after this");
ABSL_FLAG(int, l7_connect_timeout_ms, 5000,
          "an L7 request's upstream connection must be established within this");
ABSL_FLAG(int, l7_stream_idle_timeout_ms, 300000,
          "an HTTP/2 stream on which nothing moves either way this long is reset");
ABSL_FLAG(bool, l7_only, false,
          "the L7 layer alone, for this node's pods (shunt-agent --mtls=off): no tunnels, no "
          "certificates; only --l7-port listens");
ABSL_FLAG(int, drain_timeout_s, 600, "once draining: exit at the latest after this many seconds");
ABSL_FLAG(int, orphan_accept_s, 60,
          "after the agent went away: go on accepting (with the last config) this long, or "
          "until SIGTERM (the next agent's proxy is up), then drain");

namespace {

using shunt::proxy::LineChannel;

// Waits for the agent's first config and builds the runtime from it.
absl::StatusOr<std::shared_ptr<const shunt::proxy::Runtime>> FirstConfig(LineChannel& ch) {
  for (int waited_ms = 0; waited_ms < 30000; waited_ms += 100) {
    pollfd p{ch.fd(), POLLIN, 0};
    poll(&p, 1, 100);
    std::vector<nlohmann::json> docs;
    if (absl::Status st = ch.Read(&docs); !st.ok()) return st;
    for (const auto& d : docs) {
      if (!d.contains("config")) continue;
      auto c = shunt::proxy::ProxyConfigFromJson(d["config"]);
      if (!c.ok()) return c.status();
      return shunt::proxy::Runtime::Build(*std::move(c));
    }
  }
  return absl::DeadlineExceededError("no config from the agent within 30 s");
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "shunt-proxy --control-fd FD --node-ip IP[,IP6] [--outbound-port 15001] "
      "[--proxy-inbound-port 15008] [--bpffs DIR]\n  (started by shunt-agent --mtls)");
  shunt::lib::NormalizeDashedFlags(argc, argv);
  absl::ParseCommandLine(argc, argv);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e proxy %^%l%$ %v");
  signal(SIGPIPE, SIG_IGN);
  // Two descriptors per carried connection: as many as the system lets us
  // (--l7-max-connections is 20000 by default; a hard limit of 20000 would
  // stop it near half of that). Root may raise the hard limit to the
  // kernel's nr_open; otherwise the soft one goes up to the hard one.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    rlim_t most = 0;
    if (FILE* f = fopen("/proc/sys/fs/nr_open", "r")) {
      unsigned long long v = 0;
      if (fscanf(f, "%llu", &v) == 1) most = static_cast<rlim_t>(std::min(v, 1ULL << 20));
      fclose(f);
    }
    rlimit raised{std::max(most, nofile.rlim_max), std::max(most, nofile.rlim_max)};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0 && nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
  }
  const int control_fd = absl::GetFlag(FLAGS_control_fd);
  if (control_fd < 0 || fcntl(control_fd, F_GETFD) < 0) {
    spdlog::error("--control-fd: {} is not an open descriptor (shunt-agent starts the proxy)",
                  control_fd);
    return 2;
  }
  LineChannel control{shunt::lib::UniqueFd(control_fd)};
  auto fail = [&](const absl::Status& st) {
    spdlog::error("{}", st.message());
    (void)control.Send({{"error", std::string(st.message())}});
    return absl::IsInvalidArgument(st) ? 2 : 1;
  };

  shunt::proxy::ProxyShared shared;
  for (absl::string_view ip : absl::StrSplit(absl::GetFlag(FLAGS_node_ip), ',', absl::SkipEmpty()))
    shared.options.node_ips.emplace_back(ip);
  if (shared.options.node_ips.empty())
    return fail(absl::InvalidArgumentError("--node-ip: at least one address is needed"));
  const bool l7_only = absl::GetFlag(FLAGS_l7_only);
  // --l7-only: no tunnel ports (a port of 0 does not listen).
  shared.options.outbound_port = l7_only ? 0 : absl::GetFlag(FLAGS_outbound_port);
  shared.options.l7_port = absl::GetFlag(FLAGS_l7_port);
  shared.options.inbound_port = l7_only ? 0 : absl::GetFlag(FLAGS_proxy_inbound_port);
  if (l7_only && shared.options.l7_port == 0)
    return fail(absl::InvalidArgumentError("--l7-only needs an --l7-port"));
  shared.options.transparent = absl::GetFlag(FLAGS_transparent);
  // The agent checked the ranges (agent_config.cc); kept sane here too.
  shared.options.l7 = {
      .max_connections = std::max(1, absl::GetFlag(FLAGS_l7_max_connections)),
      .max_header_bytes =
          static_cast<size_t>(std::max(1024, absl::GetFlag(FLAGS_l7_max_header_bytes))),
      .max_headers = static_cast<size_t>(std::max(8, absl::GetFlag(FLAGS_l7_max_headers))),
      .header_timeout_ms = std::max(100, absl::GetFlag(FLAGS_l7_header_timeout_ms)),
      .idle_timeout_ms = std::max(1000, absl::GetFlag(FLAGS_l7_idle_timeout_ms)),
      .connect_timeout_ms = std::max(100, absl::GetFlag(FLAGS_l7_connect_timeout_ms)),
      .stream_idle_timeout_ms = std::max(1000, absl::GetFlag(FLAGS_l7_stream_idle_timeout_ms))};
  shared.options.handshake_timeout_ms = std::max(100, absl::GetFlag(FLAGS_handshake_timeout_ms));
  auto policy = shunt::proxy::InboundPolicy::Open(absl::GetFlag(FLAGS_bpffs));
  if (!policy.ok()) return fail(policy.status());
  shared.policy = *std::move(policy);
  if (const std::string otlp = absl::GetFlag(FLAGS_trace_otlp_endpoint); !otlp.empty()) {
    auto url = shunt::proxy::SpanExporter::TracesUrl(otlp);
    if (!url.ok()) return fail(url.status());
    auto spans = shunt::proxy::SpanExporter::Start(*url, absl::GetFlag(FLAGS_node));
    if (!spans.ok()) return fail(spans.status());
    shared.spans = *std::move(spans);
    spdlog::info("exporting the L7 layer's spans to {}", *url);
  }
  auto rt = FirstConfig(control);
  if (!rt.ok()) return fail(rt.status());
  shared.runtime.Set(*rt);

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);  // the workers inherit it
  shunt::lib::UniqueFd sigfd(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));

  // One worker per CPU the proxy may run on (its cgroup's cpuset, taskset),
  // each CPU's connections steered to one worker (Worker::Listen).
  const std::vector<int> cpus = shunt::proxy::AllowedCpus();
  int n = absl::GetFlag(FLAGS_threads);
  if (n <= 0) n = static_cast<int>(std::max<size_t>(1, cpus.size()));
  std::vector<std::vector<int>> steered(static_cast<size_t>(n));
  if (absl::GetFlag(FLAGS_steer_by_cpu)) {
    for (size_t k = 0; k < cpus.size(); ++k) steered[k % steered.size()].push_back(cpus[k]);
    if (static_cast<size_t>(n) > cpus.size())
      spdlog::warn(
          "--threads={} with {} CPUs to run on: {} workers have no CPU of their own and take only "
          "peer nodes' tunnels and connections from other CPUs (--steer-by-cpu=false spreads all)",
          n, cpus.size(), static_cast<size_t>(n) - cpus.size());
  }
  std::vector<std::unique_ptr<shunt::proxy::Worker>> workers;
  for (int i = 0; i < n; ++i) {
    auto w = shunt::proxy::Worker::Create(&shared);
    if (!w.ok()) return fail(w.status());
    workers.push_back(*std::move(w));
    if (absl::Status st = workers.back()->Listen(steered[static_cast<size_t>(i)]); !st.ok())
      return fail(st);
    shared.workers.push_back(workers.back().get());
  }
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&w] { w->Run(); });
  spdlog::info("listening on {} (outbound :{}, inbound :{}, L7 :{}), {} threads",
               absl::StrJoin(shared.options.node_ips, ","), shared.options.outbound_port,
               shared.options.inbound_port, shared.options.l7_port, n);
  (void)control.Send({{"ready",
                       {{"pid", getpid()},
                        {"threads", n},
                        {"node_ips", shared.options.node_ips},
                        {"outbound_port", shared.options.outbound_port},
                        {"inbound_port", shared.options.inbound_port},
                        {"l7_port", shared.options.l7_port}}}});

  bool draining = false, orphaned = false;
  int64_t drain_deadline = 0, orphan_until = 0;
  for (;;) {
    pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {control.fd(), POLLIN, 0}};
    poll(fds, orphaned ? 1 : 2, 1000);
    const int64_t now = time(nullptr);
    std::string why;
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo si{};
      (void)!read(sigfd.get(), &si, sizeof(si));
      why = absl::StrCat("signal ", si.ssi_signo);
    }
    std::vector<nlohmann::json> docs;
    if (!orphaned) {
      if (absl::Status st = control.Read(&docs); !st.ok()) {
        // The agent is gone (a restart, an upgrade): what this proxy
        // carries goes on, and it still accepts, until the next agent's
        // proxy is up (it sends SIGTERM) or the grace ends.
        orphaned = true;
        orphan_until = now + absl::GetFlag(FLAGS_orphan_accept_s);
        spdlog::warn("{}; serving with the last config for up to {} s", st.message(),
                     absl::GetFlag(FLAGS_orphan_accept_s));
      }
    }
    if (orphaned && !draining && now >= orphan_until) why = "no agent for too long";
    for (const auto& d : docs) {
      if (!d.contains("config")) continue;
      auto c = shunt::proxy::ProxyConfigFromJson(d["config"]);
      auto next = c.ok() ? shunt::proxy::Runtime::Build(*std::move(c))
                         : absl::StatusOr<std::shared_ptr<const shunt::proxy::Runtime>>(c.status());
      if (!next.ok()) {
        // The last good config stays in force.
        spdlog::error("config rejected: {}", next.status().message());
        (void)control.Send({{"config_error", std::string(next.status().message())}});
        continue;
      }
      shared.runtime.Set(*next);
      (void)control.Send({{"applied", (*next)->config.generation}});
    }
    if (!why.empty() && !draining) {
      draining = true;
      drain_deadline = now + absl::GetFlag(FLAGS_drain_timeout_s);
      spdlog::info("{}: no new connections; exiting once the ones carried are done", why);
      for (auto& w : workers) w->Drain();
    }
    if (!orphaned) {
      nlohmann::json report = shared.stats.TakeReport();
      report["http"] = shared.requests.Report();
      report["http_recent"] = shared.requests.TakeRecent();
      // Services it balances per request: what the agent's status shows.
      if (auto rt = shared.runtime.Get()) {
        report["l7_services"] = rt->l7_services.size();
        // Local pods' ports whose HTTP version a Service says (mapped to).
        report["upstream_http"] = rt->config.upstream_http;
      }
      report["l7_balancers"] = shared.l7_state.Collect();
      (void)control.Send({{"report", std::move(report)}});
    }
    if (draining) {
      bool all_done = true;
      for (auto& w : workers) all_done &= w->drained();
      if (all_done || now >= drain_deadline) break;
    }
  }
  for (auto& w : workers) w->Stop();
  for (auto& t : threads) t.join();
  return 0;
}
