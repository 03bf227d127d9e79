// shunt-mtls-bench: pod -> proxy -> mTLS -> proxy -> pod across two
// simulated nodes, Shunt (agents with --mtls=strict: the kernel hands the
// connection to the node's shunt-proxy, one pooled TLS 1.3 tunnel between
// the nodes) against two HAProxy sidecars doing the same job in TCP mode
// with TLS 1.3 and client certificates between them, set up by this
// benchmark in the same run. Rounds alternate the order of the two arms.
// Prints each round, the medians, and the ratios against issue 16's
// targets. See tools/bench/README.md.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "agent/certs/authority.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/sim.h"
#include "tools/bench/connection.h"
#include "tools/bench/haproxy_chain.h"
#include "tools/bench/interrupt.h"
#include "tools/bench/latency_stats.h"
#include "tools/bench/workloads.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {
namespace {

struct Options {
  int rounds = 3;
  int rr = 20000;
  double bulk_seconds = 3;
  double conn_seconds = 3;
  int idle = 10000;
  bool help = false;
};

struct ArmResult {
  double rr_p50_us = 0, rr_p99_us = 0;
  double cpu_us_per_request = 0;  // both proxies' CPU time over the rr run / requests
  double gbit = 0;
  // Bulk: both proxies' CPU per GB carried, and how busy the machine was
  // (all CPUs, /proc/stat): a path that leaves CPUs idle waits on something.
  double bulk_cpu_ms_per_gb = 0, bulk_busy = 0;
  double conns_per_s = 0;
};

constexpr uint16_t kAppPort = 9000;

// utime + stime of a process, all threads, in microseconds.
double CpuMicros(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  std::string stat;
  std::getline(f, stat);
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::vector<std::string> cols = absl::StrSplit(stat.substr(paren + 2), ' ');
  // Fields 14 and 15 of the whole line; 12 and 13 after "pid (comm) ".
  if (cols.size() < 13) return 0;
  return (std::stod(cols[11]) + std::stod(cols[12])) * 1e6 / sysconf(_SC_CLK_TCK);
}

// VmRSS of a process in KiB.
// Busy and total jiffies of all CPUs so far.
std::pair<uint64_t, uint64_t> CpuJiffies() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  uint64_t v[8] = {}, total = 0;
  f >> cpu;
  for (uint64_t& x : v) f >> x, total += x;
  return {total - v[3] - v[4], total};  // idle, iowait
}

uint64_t RssKib(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(f, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

class MtlsBench {
 public:
  explicit MtlsBench(Options o) : o_(o) {}

  absl::Status SetUp() {
    e2e::SweepStale();
    SHUNT_ASSIGN_OR_RETURN(n1_, e2e::TestNode::Create("n1"));
    SHUNT_ASSIGN_OR_RETURN(n2_, e2e::TestNode::Create("n2"));
    SHUNT_ASSIGN_OR_RETURN(
        client_,
        n1_->AddPod({.name = "client", .namespace_ = "bench", .service_account = "client"}));
    SHUNT_ASSIGN_OR_RETURN(
        server_,
        n2_->AddPod({.name = "server", .namespace_ = "bench", .service_account = "server"}));
    SHUNT_RETURN_IF_ERROR(e2e::TestNode::Link(*n1_, *n2_));
    SHUNT_RETURN_IF_ERROR(n1_->WriteManifests({n2_.get()}));
    SHUNT_RETURN_IF_ERROR(n2_->WriteManifests({n1_.get()}));
    // One CA for both arms: Shunt's agents issue from it, haproxy's
    // certificates come from it too.
    ca_dir_ = n1_->work_dir() + "/ca";
    const absl::Time now = absl::Now();
    SHUNT_RETURN_IF_ERROR(certs::InitAuthority(ca_dir_, now));
    SHUNT_ASSIGN_OR_RETURN(auto ca, certs::Authority::Load(ca_dir_, now));
    tls_.ca_file = ca_dir_ + "/ca.crt";
    for (auto [sa, path] :
         {std::pair{"client", &tls_.client_pem}, std::pair{"server", &tls_.server_pem}}) {
      SHUNT_ASSIGN_OR_RETURN(certs::SpiffeId id, certs::MakeSpiffeId("cluster.local", "bench", sa));
      SHUNT_ASSIGN_OR_RETURN(certs::IssuedCertificate c, ca->Issue(id, absl::Hours(24), now));
      *path = absl::StrCat(n1_->work_dir(), "/haproxy-", sa, ".pem");
      SHUNT_RETURN_IF_ERROR(WriteText(*path, c.cert_pem + c.key_pem));
    }
    SHUNT_ASSIGN_OR_RETURN(listener_, ListenInPod(*n2_, *server_, kAppPort));
    return absl::OkStatus();
  }

  // The agents, with mTLS or without; an earlier agent's proxy is told to
  // drain (it carries nothing by then) so it shares no CPU with the arm.
  absl::Status Agents(bool mtls) {
    if (mtls_on_ == mtls && started_) return absl::OkStatus();
    for (e2e::TestNode* n : {n1_.get(), n2_.get()}) {
      pid_t proxy = -1;
      if (started_) {
        if (mtls_on_) {
          auto st = n->AgentStatus();
          if (st.ok()) proxy = (*st)["mtls"]["proxy"]["pid"].get<pid_t>();
        }
        SHUNT_RETURN_IF_ERROR(n->StopAgent(SIGTERM));
        if (proxy > 0) kill(proxy, SIGTERM);
      }
      std::vector<std::string> flags = {"--node-ip=" + n->link_ip()};
      if (mtls) flags.insert(flags.end(), {"--mtls=strict", "--ca-dir=" + ca_dir_});
      SHUNT_RETURN_IF_ERROR(n->StartAgent(flags));
      SHUNT_RETURN_IF_ERROR(n->WaitMeshed());
      if (mtls)
        SHUNT_RETURN_IF_ERROR(e2e::Eventually("the proxy listens", [&]() -> absl::Status {
          SHUNT_ASSIGN_OR_RETURN(auto st, n->AgentStatus());
          return st["mtls"]["proxy"]["ready"] == true ? absl::OkStatus()
                                                      : absl::UnavailableError("not yet");
        }));
    }
    started_ = true;
    mtls_on_ = mtls;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<pid_t>> ShuntProxies() {
    std::vector<pid_t> pids;
    for (e2e::TestNode* n : {n1_.get(), n2_.get()}) {
      SHUNT_ASSIGN_OR_RETURN(auto st, n->AgentStatus());
      pids.push_back(st["mtls"]["proxy"]["pid"].get<pid_t>());
    }
    return pids;
  }

  // One arm's measurements, connecting to ip:port from the client pod.
  absl::StatusOr<ArmResult> Measure(const std::string& ip, uint16_t port,
                                    const std::vector<pid_t>& proxies) {
    ArmResult r;
    double cpu0 = 0, cpu1 = 0;
    SHUNT_ASSIGN_OR_RETURN(Connection rr, Connect(*n1_, *client_, ip, port, listener_.get()));
    for (pid_t p : proxies) cpu0 += CpuMicros(p);
    SHUNT_ASSIGN_OR_RETURN(LatencySummary lat, RunRequestResponse(std::move(rr), 1000, o_.rr));
    for (pid_t p : proxies) cpu1 += CpuMicros(p);
    r.rr_p50_us = lat.p50_us;
    r.rr_p99_us = lat.p99_us;
    r.cpu_us_per_request = (cpu1 - cpu0) / (o_.rr + 1000);
    SHUNT_ASSIGN_OR_RETURN(Connection bulk, Connect(*n1_, *client_, ip, port, listener_.get()));
    double bulk_cpu0 = 0, bulk_cpu1 = 0;
    for (pid_t p : proxies) bulk_cpu0 += CpuMicros(p);
    const auto jiffies0 = CpuJiffies();
    SHUNT_ASSIGN_OR_RETURN(BulkResult b, RunBulk(std::move(bulk), o_.bulk_seconds));
    const auto jiffies1 = CpuJiffies();
    for (pid_t p : proxies) bulk_cpu1 += CpuMicros(p);
    r.gbit = b.gbit_per_s;
    const double gb = b.gbit_per_s / 8 * o_.bulk_seconds;
    if (gb > 0) r.bulk_cpu_ms_per_gb = (bulk_cpu1 - bulk_cpu0) / 1e3 / gb;
    if (jiffies1.second > jiffies0.second)
      r.bulk_busy = static_cast<double>(jiffies1.first - jiffies0.first) /
                    static_cast<double>(jiffies1.second - jiffies0.second);
    // New connections, one at a time: connect, one byte each way, close.
    SHUNT_ASSIGN_OR_RETURN(r.conns_per_s,
                           ConnectionRate(*client_, ip, port, listener_.get(), o_.conn_seconds));
    return r;
  }

  absl::StatusOr<ArmResult> Shunt() {
    SHUNT_RETURN_IF_ERROR(Agents(true));
    SHUNT_ASSIGN_OR_RETURN(std::vector<pid_t> proxies, ShuntProxies());
    return Measure(server_->ip, kAppPort, proxies);
  }

  absl::StatusOr<ArmResult> Haproxy(int round) {
    SHUNT_RETURN_IF_ERROR(Agents(false));
    const uint16_t out = 15101 + 10 * round, in = 15106 + 10 * round;
    SHUNT_ASSIGN_OR_RETURN(auto chain,
                           HaproxyChain::Start(*n1_, *client_, *server_, kAppPort, out, in,
                                               absl::StrCat("tls-r", round), &tls_));
    auto r = Measure("127.0.0.1", out, {chain->outbound_pid(), chain->inbound_pid()});
    chain->Stop();
    return r;
  }

  // Resident memory of each node's proxy with `idle` tunnelled connections open.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> IdleMemory() {
    SHUNT_RETURN_IF_ERROR(Agents(true));
    SHUNT_ASSIGN_OR_RETURN(std::vector<pid_t> proxies, ShuntProxies());
    SHUNT_ASSIGN_OR_RETURN(auto open, IdleConnections::Open(*client_, server_->ip, kAppPort,
                                                            listener_.get(), o_.idle));
    return std::pair{RssKib(proxies[0]), RssKib(proxies[1])};
  }

 private:
  Options o_;
  std::unique_ptr<e2e::TestNode> n1_, n2_;
  e2e::TestPod *client_ = nullptr, *server_ = nullptr;
  std::string ca_dir_;
  HaproxyTls tls_;
  lib::UniqueFd listener_;
  bool started_ = false, mtls_on_ = false;
};

void PrintArm(const char* name, const ArmResult& a) {
  std::printf(
      "  %-8s rr p50 %7.1f us  p99 %7.1f us  cpu/req %6.1f us  bulk %6.2f Gbit/s (proxies %5.0f "
      "cpu-ms/GB, machine %3.0f%% busy)  new conns %8.0f/s\n",
      name, a.rr_p50_us, a.rr_p99_us, a.cpu_us_per_request, a.gbit, a.bulk_cpu_ms_per_gb,
      a.bulk_busy * 100, a.conns_per_s);
}

int Run(const Options& o) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "shunt-mtls-bench: needs root (namespaces, cgroups, BPF)\n");
    return 1;
  }
  InstallInterruptHandler();
  rlimit nofile{};
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  MtlsBench b(o);
  if (absl::Status st = b.SetUp(); !st.ok()) {
    std::fprintf(stderr, "shunt-mtls-bench: setup: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::vector<ArmResult> shunt, haproxy;
  for (int r = 1; r <= o.rounds; ++r) {
    std::printf("round %d\n", r);
    for (int k = 0; k < 2; ++k) {
      const bool shunt_arm = (k == 0) == (r % 2 == 0);  // alternate which goes first
      auto a = shunt_arm ? b.Shunt() : b.Haproxy(r);
      if (!a.ok()) {
        std::fprintf(stderr, "shunt-mtls-bench: round %d %s: %s\n", r,
                     shunt_arm ? "shunt" : "haproxy", std::string(a.status().message()).c_str());
        return 1;
      }
      PrintArm(shunt_arm ? "shunt" : "haproxy", *a);
      (shunt_arm ? shunt : haproxy).push_back(*a);
    }
  }
  auto med = [](const std::vector<ArmResult>& v, double ArmResult::*f) {
    std::vector<double> x;
    for (const auto& a : v) x.push_back(a.*f);
    return Median(x);
  };
  std::printf("medians of %d rounds\n", o.rounds);
  auto medians = [&](const std::vector<ArmResult>& v) {
    ArmResult m;
    for (double ArmResult::*f :
         {&ArmResult::rr_p50_us, &ArmResult::rr_p99_us, &ArmResult::cpu_us_per_request,
          &ArmResult::gbit, &ArmResult::bulk_cpu_ms_per_gb, &ArmResult::bulk_busy,
          &ArmResult::conns_per_s})
      m.*f = med(v, f);
    return m;
  };
  const ArmResult s = medians(shunt), h = medians(haproxy);
  PrintArm("shunt", s);
  PrintArm("haproxy", h);
  auto line = [](const char* what, double ratio, const char* target, bool met) {
    std::printf("  %-34s %6.2fx  (target %s: %s)\n", what, ratio, target, met ? "met" : "NOT met");
  };
  std::printf("ratios, shunt / haproxy\n");
  line("request/response p50", s.rr_p50_us / h.rr_p50_us, "<= 0.8x",
       s.rr_p50_us <= 0.8 * h.rr_p50_us);
  line("bulk throughput", s.gbit / h.gbit, ">= 1.3x", s.gbit >= 1.3 * h.gbit);
  line("new connections per second", s.conns_per_s / h.conns_per_s, ">= 3x",
       s.conns_per_s >= 3 * h.conns_per_s);
  line("proxy CPU per request", s.cpu_us_per_request / h.cpu_us_per_request, "<= 0.7x",
       s.cpu_us_per_request <= 0.7 * h.cpu_us_per_request);
  if (o.idle > 0) {
    auto mem = b.IdleMemory();
    if (!mem.ok()) {
      std::fprintf(stderr, "shunt-mtls-bench: idle connections: %s\n",
                   std::string(mem.status().message()).c_str());
      return 1;
    }
    const double mib1 = mem->first / 1024.0, mib2 = mem->second / 1024.0;
    std::printf(
        "resident memory with %d idle tunnelled connections: node 1 proxy %.1f MiB, node 2 "
        "proxy %.1f MiB (target < 30 MiB each: %s)\n",
        o.idle, mib1, mib2, mib1 < 30 && mib2 < 30 ? "met" : "NOT met");
  }
  return 0;
}

}  // namespace
}  // namespace shunt::bench

int main(int argc, char** argv) {
  shunt::bench::Options o;
  shunt::cli::FlagSet flags;
  flags.Int("rounds", &o.rounds, 1, 99);
  flags.Int("rr", &o.rr, 1000, 10000000);
  flags.Double("bulk-seconds", &o.bulk_seconds, 0.5, 600);
  flags.Double("conn-seconds", &o.conn_seconds, 0.5, 600);
  flags.Int("idle", &o.idle, 0, 100000);
  auto r = flags.Parse(argc, argv);
  if (!r.ok()) {
    std::fprintf(stderr, "shunt-mtls-bench: %s (see --help)\n",
                 std::string(r.status().message()).c_str());
    return 2;
  }
  if (r->help) {
    std::printf(
        "shunt-mtls-bench [--rounds 3] [--rr 20000] [--bulk-seconds 3] [--conn-seconds 3] "
        "[--idle 10000]\n  Shunt's mTLS path vs two HAProxy sidecars with TLS 1.3 and client "
        "certificates, across two simulated nodes (root).\n");
    return 0;
  }
  return shunt::bench::Run(o);
}
