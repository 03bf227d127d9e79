// shunt-telemetry-bench: the two telemetry goals of issue 4, measured.
//  1. Overhead: short-circuit latency and throughput with telemetry on vs
//     off (the agent's --telemetry), in interleaved rounds on one simulated
//     node; medians; target within 5%.
//  2. Collector: finished-flow records a second the agent's collector thread
//     (FlowCollector + FlowAggregator, the agent's own code) takes on one
//     core, fed by a benchmark-only BPF program that floods a ring buffer of
//     the data path's size with real-sized records from the other core;
//     target 200,000 a second without the ring ever being full.
// See tools/bench/README.md.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/status_macros.h"
#include "agent/telemetry/flow_aggregator.h"
#include "agent/telemetry/flow_collector.h"
#include "flow_flood.skel.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/sim.h"
#include "tools/bench/connection.h"
#include "tools/bench/cpu_dma_latency.h"
#include "tools/bench/interrupt.h"
#include "tools/bench/latency_stats.h"
#include "tools/bench/workloads.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int rounds = 5;
  int rr_iterations = 50000;
  double bulk_seconds = 3;
  double flood_seconds = 3;
  int rate = 200000;
  bool overhead = true, collector = true;
  std::string json_path = "telemetry-bench-results.json";
  bool help = false;
};

constexpr char kUsage[] =
    R"(usage: shunt-telemetry-bench [--rounds N] [--rr-iterations N] [--bulk-seconds S]
                             [--flood-seconds S] [--rate N] [--only overhead|collector] [--json PATH]

  1. overhead: rounds of { agent --telemetry=true; agent --telemetry=false }
     (order alternating per round) on one simulated node; each measures 64 B
     request/response on a fresh short-circuited connection (2000 warm-up +
     --rr-iterations samples) and one bulk stream for --bulk-seconds.
     Medians over rounds; on/off ratios; target within 5%.
  2. collector: a BPF program floods an 8 MiB ring buffer (the data path's
     size) with 904-byte flow records from CPU 1 while the agent's collector
     thread drains it on CPU 0: first paced at --rate a second for
     --flood-seconds (target: no record lost), then as fast as it can go.
Holds /dev/cpu_dma_latency at 0. Needs root.
)";

absl::StatusOr<Options> Parse(int argc, char** argv) {
  Options o;
  std::string only;
  cli::FlagSet flags;
  flags.Int("rounds", &o.rounds, 1, 99);
  flags.Int("rr-iterations", &o.rr_iterations, 1000, 100000000);
  flags.Double("bulk-seconds", &o.bulk_seconds, 0.1, 3600);
  flags.Double("flood-seconds", &o.flood_seconds, 0.1, 3600);
  flags.Int("rate", &o.rate, 1000, 100000000);
  flags.Choice("only", &only, {"overhead", "collector"});
  flags.String("json", &o.json_path);
  SHUNT_ASSIGN_OR_RETURN(cli::FlagSet::Result r, flags.Parse(argc, argv));
  o.help = r.help;
  if (o.help) return o;
  if (!r.args.empty())
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", r.args[0], "'"));
  if (!only.empty()) {
    o.overhead = only == "overhead";
    o.collector = only == "collector";
  }
  return o;
}

// ---- 1. Overhead -----------------------------------------------------------

struct ArmRound {
  LatencySummary rr;
  double gbit = 0;
};

absl::StatusOr<ArmRound> MeasureArm(e2e::TestNode& node, const e2e::TestPod& client,
                                    const e2e::TestPod& server, bool telemetry, uint16_t port,
                                    const Options& o) {
  SHUNT_RETURN_IF_ERROR(node.StartAgent({telemetry ? "--telemetry=true" : "--telemetry=false"}));
  SHUNT_RETURN_IF_ERROR(node.WaitMeshed());
  SHUNT_ASSIGN_OR_RETURN(lib::Counters before, node.Counters());
  SHUNT_ASSIGN_OR_RETURN(lib::UniqueFd listener, ListenInPod(node, server, port));
  ArmRound r;
  {
    SHUNT_ASSIGN_OR_RETURN(Connection c, Connect(node, client, server.ip, port, listener.get()));
    SHUNT_ASSIGN_OR_RETURN(r.rr, RunRequestResponse(std::move(c), 2000, o.rr_iterations));
  }
  {
    SHUNT_ASSIGN_OR_RETURN(Connection c, Connect(node, client, server.ip, port, listener.get()));
    SHUNT_ASSIGN_OR_RETURN(BulkResult b, RunBulk(std::move(c), o.bulk_seconds));
    r.gbit = b.gbit_per_s;
  }
  // Both connections are closed: with telemetry on, their records reached
  // the ring (the measurement covered the real work); off, none did.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  SHUNT_ASSIGN_OR_RETURN(lib::Counters after, node.Counters());
  const uint64_t redirected =
      after[SHUNT_CTR_BYTES_REDIRECTED] - before[SHUNT_CTR_BYTES_REDIRECTED];
  const uint64_t ended = after[SHUNT_CTR_FLOWS_ENDED] - before[SHUNT_CTR_FLOWS_ENDED];
  if (redirected == 0)
    return absl::FailedPreconditionError("nothing was short-circuited: " + node.AgentLog());
  if (telemetry && ended < 2)
    return absl::FailedPreconditionError(
        absl::StrCat("telemetry on, but ", ended, " flow records ended"));
  if (!telemetry && ended != 0)
    return absl::FailedPreconditionError(
        absl::StrCat("telemetry off, but ", ended, " flow records ended"));
  SHUNT_RETURN_IF_ERROR(node.StopAgent(SIGTERM));
  SHUNT_RETURN_IF_ERROR(
      e2e::Sh(absl::StrCat(SHUNT_AGENT_BIN, " --uninstall --bpffs ", node.bpffs())).status());
  std::fprintf(stderr, "  telemetry %-3s rr p50 %6.2f us  p99 %6.2f us  bulk %6.2f Gbit/s\n",
               telemetry ? "on" : "off", r.rr.p50_us, r.rr.p99_us, r.gbit);
  return r;
}

struct Overhead {
  std::vector<ArmRound> on, off;
  double on_p50 = 0, off_p50 = 0, on_p99 = 0, off_p99 = 0, on_gbit = 0, off_gbit = 0;
};

absl::StatusOr<Overhead> MeasureOverhead(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(auto node, e2e::TestNode::Create("t1"));
  SHUNT_ASSIGN_OR_RETURN(
      e2e::TestPod * client,
      node->AddPod({.name = "client", .namespace_ = "bench", .service_account = "client"}));
  SHUNT_ASSIGN_OR_RETURN(
      e2e::TestPod * server,
      node->AddPod({.name = "server", .namespace_ = "bench", .service_account = "server"}));
  Overhead res;
  for (int i = 0; i < o.rounds; ++i) {
    std::fprintf(stderr, "overhead round %d/%d\n", i + 1, o.rounds);
    // Alternate which arm goes first, so drift within a round cancels.
    for (int k = 0; k < 2; ++k) {
      const bool on = (i + k) % 2 == 0;
      SHUNT_ASSIGN_OR_RETURN(ArmRound r, MeasureArm(*node, *client, *server, on,
                                                    static_cast<uint16_t>(7300 + 10 * i + k), o));
      (on ? res.on : res.off).push_back(r);
      SHUNT_RETURN_IF_ERROR(CheckInterrupted());
    }
  }
  auto med = [](const std::vector<ArmRound>& v, auto f) {
    std::vector<double> x;
    for (const auto& r : v) x.push_back(f(r));
    return Median(x);
  };
  res.on_p50 = med(res.on, [](const ArmRound& r) { return r.rr.p50_us; });
  res.off_p50 = med(res.off, [](const ArmRound& r) { return r.rr.p50_us; });
  res.on_p99 = med(res.on, [](const ArmRound& r) { return r.rr.p99_us; });
  res.off_p99 = med(res.off, [](const ArmRound& r) { return r.rr.p99_us; });
  res.on_gbit = med(res.on, [](const ArmRound& r) { return r.gbit; });
  res.off_gbit = med(res.off, [](const ArmRound& r) { return r.gbit; });
  return res;
}

// ---- 2. Collector ----------------------------------------------------------

struct FloodArgs {
  uint32_t count;
  uint32_t clients;
  uint64_t seq;
  uint32_t base_ip;
  uint32_t pad;
};

struct FloodResult {
  double seconds = 0;
  uint64_t produced = 0, dropped = 0, consumed = 0;
  double consumed_per_s = 0;
};

void PinTo(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

class Flooder {
 public:
  static absl::StatusOr<std::unique_ptr<Flooder>> Create() {
    std::unique_ptr<Flooder> f(new Flooder());
    f->skel_ = flow_flood__open_and_load();
    if (!f->skel_) return absl::InternalError(absl::StrCat("load flow_flood: ", strerror(errno)));
    return f;
  }
  ~Flooder() {
    if (skel_) flow_flood__destroy(skel_);
  }
  int ring_fd() const { return bpf_map__fd(skel_->maps.flood_ring); }
  absl::Status SetTemplate(const shunt_flow_event& t) {
    uint32_t zero = 0;
    if (bpf_map_update_elem(bpf_map__fd(skel_->maps.flood_template), &zero, &t, BPF_ANY))
      return absl::InternalError(absl::StrCat("template: ", strerror(errno)));
    return absl::OkStatus();
  }
  absl::Status Emit(uint32_t n) {
    FloodArgs a{n, kClients, seq_, kBaseIp, 0};
    seq_ += n;
    LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));
    if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.flood), &opts))
      return absl::InternalError(absl::StrCat("run flood: ", strerror(errno)));
    return absl::OkStatus();
  }
  uint64_t produced() const { return skel_->bss->produced; }
  uint64_t dropped() const { return skel_->bss->dropped; }

  static constexpr uint32_t kClients = 100;
  static constexpr uint32_t kBaseIp = (10u << 24) | (77u << 16) | (0u << 8) | 10;  // 10.77.0.10

 private:
  Flooder() = default;
  flow_flood* skel_ = nullptr;
  uint64_t seq_ = 0;
};

// Records of short-circuited flows between 100 client pods and one server
// pod, each with a handful of request/response samples (so with a
// histogram: the larger of the two record sizes).
shunt_flow_event TemplateRecord() {
  shunt_flow_event ev{};
  shunt_flow& t = ev.flow;
  t.key.server_ip4 = htonl(Flooder::kBaseIp + 200);
  t.key.server_port = htons(6379);
  t.start_ns = 1000000000;
  t.end_ns = 1000000000 + 5000000;
  t.connect_ns = 30000;
  t.bytes[0] = 5900;
  t.bytes[1] = 500;
  t.msgs[0] = t.msgs[1] = 100;
  t.verdict = SHUNT_FLOW_ALLOWED;
  t.end = SHUNT_FLOW_CLOSED;
  t.flags = SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_SERVER_LOCAL | SHUNT_FLOW_F_SHORT_CIRCUIT |
            SHUNT_FLOW_F_ESTABLISHED;
  for (uint64_t ns : {8000ull, 9000ull, 12000ull, 45000ull}) {
    ev.rr_hist[shunt_hist_bucket(ns)] += 25;
    t.rr_sum_ns += 25 * ns;
    t.rr_count += 25;
  }
  return ev;
}

std::vector<model::Pod> Pods() {
  std::vector<model::Pod> pods;
  for (uint32_t i = 0; i <= 200; ++i) {
    model::Pod p;
    p.namespace_ = "bench";
    p.name = i == 200 ? "server" : absl::StrCat("client-", i);
    p.service_account = i == 200 ? "server" : "client";
    p.workload_kind = "deployment";
    p.workload = i == 200 ? "server" : "client";
    p.ip_be = htonl(Flooder::kBaseIp + i);
    pods.push_back(p);
  }
  return pods;
}

// Sends at `rate` a second (0: as fast as possible) for `seconds`, then waits
// for the collector to drain the ring.
absl::StatusOr<FloodResult> Flood(Flooder& f, telemetry::FlowCollector& c, int rate,
                                  double seconds) {
  const uint64_t p0 = f.produced(), d0 = f.dropped(), c0 = c.records();
  const auto t0 = Clock::now();
  const auto end =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  const uint32_t batch = rate ? std::max(1, rate / 1000) : 1000;  // paced: a batch a millisecond
  uint64_t sent = 0;
  for (auto now = t0; now < end; now = Clock::now()) {
    if (rate) {
      const double due = std::chrono::duration<double>(now - t0).count() * rate;
      if (static_cast<double>(sent) >= due) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        continue;
      }
    }
    SHUNT_RETURN_IF_ERROR(f.Emit(batch));
    sent += batch;
  }
  const double produce_s = std::chrono::duration<double>(Clock::now() - t0).count();
  // Drained: every record produced was consumed (or 2 s passed).
  for (int i = 0; i < 2000 && c.records() - c0 < f.produced() - p0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  FloodResult r;
  r.produced = f.produced() - p0;
  r.dropped = f.dropped() - d0;
  r.consumed = c.records() - c0;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // The consumer's rate over the time the producer ran plus the drain.
  r.consumed_per_s = static_cast<double>(r.consumed) / std::max(produce_s, r.seconds);
  return r;
}

struct CollectorResult {
  FloodResult paced, flat_out;
  size_t edges = 0;
};

absl::StatusOr<CollectorResult> MeasureCollector(const Options& o) {
  SHUNT_ASSIGN_OR_RETURN(auto flooder, Flooder::Create());
  SHUNT_RETURN_IF_ERROR(flooder->SetTemplate(TemplateRecord()));
  telemetry::FlowAggregator agg({});
  agg.SetDirectory(telemetry::PeerDirectory::Build(Pods()));
  // The collector thread inherits CPU 0; the producer then moves to CPU 1.
  PinTo(0);
  SHUNT_ASSIGN_OR_RETURN(auto collector, telemetry::FlowCollector::Start(flooder->ring_fd(), &agg));
  PinTo(1);
  CollectorResult r;
  std::fprintf(stderr, "collector: paced at %d records/s for %.1f s\n", o.rate, o.flood_seconds);
  SHUNT_ASSIGN_OR_RETURN(r.paced, Flood(*flooder, *collector, o.rate, o.flood_seconds));
  std::fprintf(stderr, "collector: as fast as the producer can for %.1f s\n", o.flood_seconds);
  SHUNT_ASSIGN_OR_RETURN(r.flat_out, Flood(*flooder, *collector, 0, o.flood_seconds));
  r.edges = agg.totals().edges;
  collector.reset();
  cpu_set_t all;
  CPU_ZERO(&all);
  for (int i = 0; i < CPU_SETSIZE; ++i) CPU_SET(i, &all);
  pthread_setaffinity_np(pthread_self(), sizeof(all), &all);
  return r;
}

int Run(int argc, char** argv) {
  auto o = Parse(argc, argv);
  if (!o.ok()) return cli::UsageError("shunt-telemetry-bench", o.status());
  if (o->help) return std::fputs(kUsage, stdout), 0;
  if (std::string why = e2e::PrivilegedSkipReason(); !why.empty()) {
    std::fprintf(stderr, "shunt-telemetry-bench: %s\n", why.c_str());
    return 1;
  }
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::fprintf(stderr,
                 "shunt-telemetry-bench: needs 2 CPUs (producer and collector on their own)\n");
    return 1;
  }
  auto dma = CpuDmaLatencyHold::Create();
  if (!dma.ok()) {
    std::fprintf(stderr, "shunt-telemetry-bench: /dev/cpu_dma_latency: %s\n",
                 std::string(dma.status().message()).c_str());
    return 1;
  }
  InstallInterruptHandler();
  e2e::SweepStale();
  Overhead ov;
  CollectorResult col;
  if (o->overhead) {
    auto r = MeasureOverhead(*o);
    if (!r.ok())
      return std::fprintf(stderr, "overhead: %s\n", std::string(r.status().message()).c_str()), 1;
    ov = *r;
  }
  if (o->collector) {
    auto r = MeasureCollector(*o);
    if (!r.ok())
      return std::fprintf(stderr, "collector: %s\n", std::string(r.status().message()).c_str()), 1;
    col = *r;
  }

  utsname u{};
  uname(&u);
  std::printf("shunt-telemetry-bench  kernel %s  %ld CPUs  (/dev/cpu_dma_latency held at 0)\n\n",
              u.release, sysconf(_SC_NPROCESSORS_ONLN));
  nlohmann::json j = {{"kernel", u.release}};
  if (o->overhead) {
    const double p50 = ov.on_p50 / ov.off_p50, p99 = ov.on_p99 / ov.off_p99,
                 bulk = ov.on_gbit / ov.off_gbit;
    std::printf("1. short-circuit with telemetry on vs off: medians of %d interleaved rounds\n",
                o->rounds);
    std::printf("                      telemetry off   telemetry on    on/off   target\n");
    std::printf("  rr p50              %9.2f us    %9.2f us   %6.3fx   <= 1.05x: %s\n", ov.off_p50,
                ov.on_p50, p50, p50 <= 1.05 ? "MET" : "NOT MET");
    std::printf("  rr p99              %9.2f us    %9.2f us   %6.3fx   <= 1.05x: %s\n", ov.off_p99,
                ov.on_p99, p99, p99 <= 1.05 ? "MET" : "NOT MET");
    std::printf("  bulk, one stream    %7.2f Gbit/s   %7.2f Gbit/s  %6.3fx   >= 0.95x: %s\n",
                ov.off_gbit, ov.on_gbit, bulk, bulk >= 0.95 ? "MET" : "NOT MET");
    std::printf("  per round (on):  ");
    for (const auto& r : ov.on) std::printf(" %.2f/%.2f/%.1f", r.rr.p50_us, r.rr.p99_us, r.gbit);
    std::printf("\n  per round (off): ");
    for (const auto& r : ov.off) std::printf(" %.2f/%.2f/%.1f", r.rr.p50_us, r.rr.p99_us, r.gbit);
    std::printf("   (p50 us/p99 us/Gbit/s)\n\n");
    j["overhead"] = {
        {"rounds", o->rounds},
        {"on", {{"p50_us", ov.on_p50}, {"p99_us", ov.on_p99}, {"gbit_per_s", ov.on_gbit}}},
        {"off", {{"p50_us", ov.off_p50}, {"p99_us", ov.off_p99}, {"gbit_per_s", ov.off_gbit}}},
        {"ratio", {{"p50", p50}, {"p99", p99}, {"bulk", bulk}}}};
  }
  if (o->collector) {
    auto line = [](const char* what, const FloodResult& r) {
      std::printf(
          "  %-26s produced %9llu  lost (ring full) %7llu  consumed %9llu  -> %9.0f records/s\n",
          what, static_cast<unsigned long long>(r.produced),
          static_cast<unsigned long long>(r.dropped), static_cast<unsigned long long>(r.consumed),
          r.consumed_per_s);
    };
    std::printf("2. the agent's flow collector on one core (records of %zu bytes, 8 MiB ring)\n",
                sizeof(shunt_flow_event));
    line(absl::StrCat("paced at ", o->rate, "/s").c_str(), col.paced);
    line("as fast as possible", col.flat_out);
    const bool met = col.paced.dropped == 0 && col.paced.consumed == col.paced.produced &&
                     col.paced.consumed_per_s >= 0.98 * o->rate;
    std::printf("  target: %d records/s without losses: %s\n", o->rate, met ? "MET" : "NOT MET");
    j["collector"] = {{"rate", o->rate},
                      {"paced",
                       {{"produced", col.paced.produced},
                        {"dropped", col.paced.dropped},
                        {"consumed", col.paced.consumed},
                        {"per_s", col.paced.consumed_per_s}}},
                      {"flat_out",
                       {{"produced", col.flat_out.produced},
                        {"dropped", col.flat_out.dropped},
                        {"consumed", col.flat_out.consumed},
                        {"per_s", col.flat_out.consumed_per_s}}}};
  }
  std::ofstream(o->json_path) << j.dump(2) << "\n";
  std::printf("\nJSON: %s\n", o->json_path.c_str());
  return 0;
}

}  // namespace
}  // namespace shunt::bench

int main(int argc, char** argv) { return shunt::bench::Run(argc, argv); }
