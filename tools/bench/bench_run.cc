#include "tools/bench/bench_run.h"

#include <signal.h>
#include <sys/socket.h>

#include <cstdio>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/sim.h"
#include "tools/bench/connection.h"
#include "tools/bench/haproxy_chain.h"
#include "tools/bench/interrupt.h"

#ifndef SHUNT_AGENT_BIN
#error "SHUNT_AGENT_BIN must name the shunt-agent binary"
#endif

namespace shunt::bench {

namespace {

// Server application ports, one per path and round (base + kRoundPortStep x
// round index) so no path or round reuses another's listener or meets its
// TIME_WAIT sockets. kMaxRounds keeps them apart: 7101..8091, 15001..15981.
constexpr uint16_t kKernelPort = 7101, kShuntPort = 7102, kHaproxyAppPort = 7103;
constexpr int kRoundPortStep = 10;

uint16_t RoundPort(uint16_t base, int round_index) {
  return static_cast<uint16_t>(base + kRoundPortStep * round_index);
}

struct Snapshot {
  uint64_t veth = 0;
  std::optional<lib::Counters> counters;
};

absl::StatusOr<Snapshot> Snap(const e2e::TestNode& node, const e2e::TestPod& client,
                              bool with_counters) {
  Snapshot s;
  SHUNT_ASSIGN_OR_RETURN(s.veth, node.VethBytes(client));
  if (with_counters) {
    SHUNT_ASSIGN_OR_RETURN(s.counters, node.Counters());
  }
  return s;
}

lib::Counters Delta(const lib::Counters& after, const lib::Counters& before) {
  lib::Counters d{};
  for (size_t i = 0; i < d.size(); ++i) d[i] = after[i] - before[i];
  return d;
}

// Both tests of one path, each on a fresh connection from the client pod to
// connect_ip:connect_port, served by a listener on 0.0.0.0:app_port in the
// server pod.
absl::StatusOr<PathResult> MeasurePath(const std::string& path, int round,
                                       const e2e::TestNode& node, const e2e::TestPod& client,
                                       const e2e::TestPod& server, const std::string& connect_ip,
                                       uint16_t connect_port, uint16_t app_port, bool with_counters,
                                       const Options& opts) {
  PathResult r;
  r.name = path;
  r.round = round;
  // "shunt r2/3", for progress and errors.
  const std::string name = absl::StrCat(path, " r", round, "/", opts.rounds);
  SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd listener, ListenInPod(node, server, app_port));

  std::fprintf(stderr, "[%s] request/response: %d warm-up + %d sampled 64 B round trips\n",
               name.c_str(), opts.rr_warmup, opts.rr_iterations);
  SHUNT_ASSIGN_OR_RETURN(Snapshot before, Snap(node, client, with_counters));
  {
    SHUNT_ASSIGN_OR_RETURN(Connection c,
                           Connect(node, client, connect_ip, connect_port, listener.get()));
    auto rr = RunRequestResponse(std::move(c), opts.rr_warmup, opts.rr_iterations);
    if (!rr.ok())
      return absl::Status(rr.status().code(), absl::StrCat(name, ": ", rr.status().message()));
    r.rr = *rr;
  }
  SHUNT_RETURN_IF_ERROR(CheckInterrupted());
  SHUNT_ASSIGN_OR_RETURN(Snapshot mid, Snap(node, client, with_counters));

  std::fprintf(stderr, "[%s] bulk: one stream, 128 KiB writes for %.1f s\n", name.c_str(),
               opts.bulk_seconds);
  {
    SHUNT_ASSIGN_OR_RETURN(Connection c,
                           Connect(node, client, connect_ip, connect_port, listener.get()));
    auto bulk = RunBulk(std::move(c), opts.bulk_seconds);
    if (!bulk.ok())
      return absl::Status(bulk.status().code(), absl::StrCat(name, ": ", bulk.status().message()));
    r.bulk = *bulk;
  }
  SHUNT_ASSIGN_OR_RETURN(Snapshot after, Snap(node, client, with_counters));

  r.rr_veth_bytes = mid.veth - before.veth;
  r.bulk_veth_bytes = after.veth - mid.veth;
  if (with_counters) {
    r.rr_counters = Delta(*mid.counters, *before.counters);
    r.bulk_counters = Delta(*after.counters, *mid.counters);
  }
  std::string data_path;
  if (with_counters)
    data_path = absl::StrCat(
        "; bytes_redirected rr +", (*r.rr_counters)[SHUNT_CTR_BYTES_REDIRECTED], ", bulk +",
        (*r.bulk_counters)[SHUNT_CTR_BYTES_REDIRECTED], "; FLOW_BACKPRESSURE +",
        (*r.rr_counters)[SHUNT_CTR_FLOW_BACKPRESSURE] +
            (*r.bulk_counters)[SHUNT_CTR_FLOW_BACKPRESSURE]);
  std::fprintf(stderr, "[%s] rr p50 %.1f us, p99 %.1f us; bulk %.2f Gbit/s%s\n", name.c_str(),
               r.rr.p50_us, r.rr.p99_us, r.bulk.gbit_per_s, data_path.c_str());
  return r;
}

// The shunt numbers mean nothing unless the bytes went socket to socket.
absl::Status CheckShortCircuited(const PathResult& r, const e2e::TestNode& node) {
  const uint64_t rr = (*r.rr_counters)[SHUNT_CTR_BYTES_REDIRECTED];
  const uint64_t bulk = (*r.bulk_counters)[SHUNT_CTR_BYTES_REDIRECTED];
  if (rr > 0 && bulk > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "shunt path NOT short-circuited in round ", r.round, ": SHUNT_CTR_BYTES_REDIRECTED grew by ",
      rr, " during request/response and by ", bulk,
      " during bulk, so the 'shunt' numbers would be plain kernel TCP. sockets_short_circuited "
      "grew by ",
      (*r.rr_counters)[SHUNT_CTR_SOCK_SHORT_CIRCUITED] +
          (*r.bulk_counters)[SHUNT_CTR_SOCK_SHORT_CIRCUITED],
      ". Agent log:\n", node.AgentLog()));
}

// Agent stopped and its programs and pins removed: what the kernel rounds
// after the first and the haproxy rounds need.
absl::Status StopAndUninstallAgent(e2e::TestNode& node) {
  SHUNT_RETURN_IF_ERROR(node.StopAgent(SIGTERM));
  SHUNT_RETURN_IF_ERROR(
      e2e::Sh(absl::StrCat(SHUNT_AGENT_BIN, " --uninstall --bpffs ", node.bpffs())).status());
  if (node.Counters().ok())
    return absl::InternalError(absl::StrCat("shunt-agent --uninstall left the pins under ",
                                            node.bpffs(),
                                            " in place; the kernel and haproxy "
                                            "paths would still run through the data path"));
  return absl::OkStatus();
}

absl::StatusOr<BenchResults> RunWithNode(e2e::TestNode& node, const Options& opts) {
  BenchResults res;
  SHUNT_ASSIGN_OR_RETURN(
      e2e::TestPod * client,
      node.AddPod({.name = "client", .namespace_ = "bench", .service_account = "client"}));
  SHUNT_ASSIGN_OR_RETURN(
      e2e::TestPod * server,
      node.AddPod({.name = "server", .namespace_ = "bench", .service_account = "server"}));
  std::fprintf(stderr, "node %s: client pod %s, server pod %s; %d rounds\n", node.name().c_str(),
               client->ip.c_str(), server->ip.c_str(), opts.rounds);

  // Interleaved rounds, so drift over the run hits both paths alike and
  // each round gets its own thread placement.
  for (int i = 0; i < opts.rounds; ++i) {
    const int round = i + 1;
    // a. Plain kernel TCP through the node namespace; no agent.
    SHUNT_ASSIGN_OR_RETURN(PathResult kernel, MeasurePath("kernel", round, node, *client, *server,
                                                          server->ip, RoundPort(kKernelPort, i),
                                                          RoundPort(kKernelPort, i), false, opts));
    res.kernel.push_back(std::move(kernel));
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());

    // b. The same pods, meshed: new connections are short-circuited.
    std::fprintf(stderr, "[shunt r%d/%d] starting shunt-agent\n", round, opts.rounds);
    SHUNT_RETURN_IF_ERROR(node.StartAgent(opts.agent_flags));
    SHUNT_RETURN_IF_ERROR(node.WaitMeshed());
    SHUNT_ASSIGN_OR_RETURN(PathResult shunt, MeasurePath("shunt", round, node, *client, *server,
                                                         server->ip, RoundPort(kShuntPort, i),
                                                         RoundPort(kShuntPort, i), true, opts));
    SHUNT_RETURN_IF_ERROR(CheckShortCircuited(shunt, node));
    res.shunt.push_back(std::move(shunt));

    // No agent, no programs for the next kernel round and for haproxy.
    std::fprintf(stderr, "[shunt r%d/%d] stopping and uninstalling shunt-agent\n", round,
                 opts.rounds);
    SHUNT_RETURN_IF_ERROR(StopAndUninstallAgent(node));
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());
  }

  // c. No agent, no programs: a two-hop haproxy sidecar chain, a fresh one
  // per round.
  for (int i = 0; i < opts.rounds; ++i) {
    const int round = i + 1;
    std::fprintf(stderr, "[haproxy r%d/%d] starting the sidecar chain\n", round, opts.rounds);
    const uint16_t app_port = RoundPort(kHaproxyAppPort, i);
    SHUNT_ASSIGN_OR_RETURN(
        auto chain, HaproxyChain::Start(
                        node, *client, *server, app_port, RoundPort(HaproxyChain::kOutboundPort, i),
                        RoundPort(HaproxyChain::kInboundPort, i), absl::StrCat("r", round)));
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());
    SHUNT_ASSIGN_OR_RETURN(PathResult haproxy,
                           MeasurePath("haproxy", round, node, *client, *server, "127.0.0.1",
                                       chain->outbound_port(), app_port, false, opts));
    res.haproxy.push_back(std::move(haproxy));
    chain->Stop();  // gone before the next chain starts
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());
  }
  return res;
}

}  // namespace

absl::StatusOr<BenchResults> RunBench(const Options& opts) {
  e2e::SweepStale();  // what an interrupted earlier run left behind
  SHUNT_ASSIGN_OR_RETURN(std::unique_ptr<e2e::TestNode> node, e2e::TestNode::Create("b1"));
  auto res = RunWithNode(*node, opts);
  if (!res.ok()) std::fprintf(stderr, "cleaning up after the error...\n");
  node.reset();  // namespaces, cgroups, pins, agent, haproxies
  return res;
}

}  // namespace shunt::bench
