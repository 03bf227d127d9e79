#include "tools/bench/report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "agent/lib/errno_status.h"
#include "nlohmann/json.hpp"

namespace shunt::bench {

namespace {

std::string Order(int rounds) {
  return absl::StrCat(
      "interleaved: ", rounds,
      " round(s) of {kernel (no agent); shunt (agent started, pods "
      "meshed); agent stopped and uninstalled}, then ",
      rounds,
      " round(s) of haproxy (no agent, a fresh sidecar chain each); fresh connections and ports "
      "in every round; table values are medians over rounds, ratios and targets use the medians");
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

// One table row: how to read the metric off one round's result.
struct Metric {
  const char* label;
  const char* fmt;
  double (*of)(const PathResult&);
};

const Metric kMetrics[] = {
    {"rr p50 us", "%.1f", [](const PathResult& p) { return p.rr.p50_us; }},
    {"rr p99 us", "%.1f", [](const PathResult& p) { return p.rr.p99_us; }},
    {"rr p99.9 us", "%.1f", [](const PathResult& p) { return p.rr.p999_us; }},
    {"bulk Gbit/s", "%.2f", [](const PathResult& p) { return p.bulk.gbit_per_s; }},
};

std::vector<double> PerRound(const std::vector<PathResult>& rounds,
                             double (*of)(const PathResult&)) {
  std::vector<double> v;
  for (const PathResult& p : rounds) v.push_back(of(p));
  return v;
}

double MedianOf(const std::vector<PathResult>& rounds, double (*of)(const PathResult&)) {
  return Median(PerRound(rounds, of));
}

// shunt / kernel (or haproxy / kernel) of the same round index.
std::vector<double> RoundRatios(const std::vector<PathResult>& num,
                                const std::vector<PathResult>& den,
                                double (*of)(const PathResult&)) {
  std::vector<double> v;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i)
    v.push_back(Ratio(of(num[i]), of(den[i])));
  return v;
}

struct Row {
  const char* label;
  double kernel, shunt, haproxy;  // medians over rounds
  const char* fmt;
};

std::vector<Row> Rows(const BenchResults& r) {
  std::vector<Row> rows;
  for (const Metric& m : kMetrics)
    rows.push_back({m.label, MedianOf(r.kernel, m.of), MedianOf(r.shunt, m.of),
                    MedianOf(r.haproxy, m.of), m.fmt});
  return rows;
}

std::string Fmt(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// "10.1/4.9/10.3"
std::string Slashed(const std::vector<double>& v, const char* fmt) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) absl::StrAppend(&s, i ? "/" : "", Fmt(fmt, v[i]));
  return s;
}

std::string Human(uint64_t bytes) {
  if (bytes >= 10ull << 20) return Fmt("%.0f MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= 10ull << 10) return Fmt("%.0f KiB", static_cast<double>(bytes) / (1 << 10));
  return absl::StrCat(bytes, " B");
}

// "9000 MiB/8800 MiB/9100 MiB"
std::string HumanSlashed(const std::vector<PathResult>& rounds) {
  std::string s;
  for (size_t i = 0; i < rounds.size(); ++i)
    absl::StrAppend(&s, i ? "/" : "", Human(rounds[i].bulk_veth_bytes));
  return s;
}

nlohmann::json PathJson(const PathResult& p) {
  nlohmann::json j = {
      {"round", p.round},
      {"rr",
       {{"samples", p.rr.samples},
        {"min_us", p.rr.min_us},
        {"mean_us", p.rr.mean_us},
        {"p50_us", p.rr.p50_us},
        {"p99_us", p.rr.p99_us},
        {"p99_9_us", p.rr.p999_us},
        {"max_us", p.rr.max_us},
        {"client_veth_bytes", p.rr_veth_bytes}}},
      {"bulk",
       {{"gbit_per_s", p.bulk.gbit_per_s},
        {"bytes_sent", p.bulk.bytes_sent},
        {"bytes_measured", p.bulk.bytes_measured},
        {"server_seconds", p.bulk.server_seconds},
        {"client_seconds", p.bulk.client_seconds},
        {"client_veth_bytes", p.bulk_veth_bytes}}},
  };
  auto counters = [](const lib::Counters& c) {
    nlohmann::json o = nlohmann::json::object();
    for (int i = 0; i < SHUNT_CTR_MAX; ++i) o[lib::CounterName(i)] = c[i];
    return o;
  };
  if (p.rr_counters) j["rr"]["counter_deltas"] = counters(*p.rr_counters);
  if (p.bulk_counters) j["bulk"]["counter_deltas"] = counters(*p.bulk_counters);
  return j;
}

nlohmann::json MediansJson(const PathMedians& m) {
  return {
      {"rr",
       {{"samples_per_round", m.rr.samples},
        {"min_us", m.rr.min_us},
        {"mean_us", m.rr.mean_us},
        {"p50_us", m.rr.p50_us},
        {"p99_us", m.rr.p99_us},
        {"p99_9_us", m.rr.p999_us},
        {"max_us", m.rr.max_us}}},
      {"bulk", {{"gbit_per_s", m.bulk_gbit_per_s}, {"client_veth_bytes", m.bulk_veth_bytes}}},
  };
}

nlohmann::json PathRoundsJson(const std::vector<PathResult>& rounds) {
  nlohmann::json all = nlohmann::json::array();
  for (const PathResult& p : rounds) all.push_back(PathJson(p));
  return {{"median", MediansJson(MediansOf(rounds))}, {"rounds", all}};
}

}  // namespace

PathMedians MediansOf(const std::vector<PathResult>& rounds) {
  PathMedians m;
  m.rr.samples = rounds.empty() ? 0 : rounds.front().rr.samples;
  m.rr.min_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.min_us; });
  m.rr.mean_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.mean_us; });
  m.rr.p50_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.p50_us; });
  m.rr.p99_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.p99_us; });
  m.rr.p999_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.p999_us; });
  m.rr.max_us = MedianOf(rounds, [](const PathResult& p) { return p.rr.max_us; });
  m.bulk_gbit_per_s = MedianOf(rounds, [](const PathResult& p) { return p.bulk.gbit_per_s; });
  m.bulk_veth_bytes =
      MedianOf(rounds, [](const PathResult& p) { return static_cast<double>(p.bulk_veth_bytes); });
  return m;
}

SystemInfo CollectSystemInfo(int32_t cpu_dma_latency_us) {
  SystemInfo s;
  utsname u{};
  if (uname(&u) == 0) {
    s.kernel_release = u.release;
    s.uname = absl::StrCat(u.sysname, " ", u.release, " ", u.version, " ", u.machine);
  }
  s.cpus = sysconf(_SC_NPROCESSORS_ONLN);
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  s.date_utc = buf;
  s.cpu_dma_latency_us = cpu_dma_latency_us;
  return s;
}

std::vector<Target> EvaluateTargets(const BenchResults& r) {
  auto target = [&](const char* what, const Metric& m, double limit, bool at_most) {
    Target t{what, Ratio(MedianOf(r.shunt, m.of), MedianOf(r.kernel, m.of)), limit, at_most};
    t.met = at_most ? t.ratio <= limit : t.ratio >= limit;
    t.round_ratios = RoundRatios(r.shunt, r.kernel, m.of);
    return t;
  };
  return {
      target("short-circuit rr p50 <= 0.70x kernel", kMetrics[0], 0.70, true),
      target("short-circuit rr p99 <= 0.70x kernel", kMetrics[1], 0.70, true),
      target("short-circuit bulk >= 2.5x kernel", kMetrics[3], 2.5, false),
  };
}

void PrintReport(FILE* out, const BenchResults& r, const SystemInfo& sys, const Options& opts) {
  const int n = static_cast<int>(r.kernel.size());
  std::fprintf(out, "\nshunt-bench  %s  kernel %s  %ld CPUs\n", sys.date_utc.c_str(),
               sys.kernel_release.c_str(), sys.cpus);
  std::fprintf(out, "/dev/cpu_dma_latency held at 0 us for the whole run (kernel reports %d us)\n",
               sys.cpu_dma_latency_us);
  std::fprintf(out,
               "rr: 64 B echo, one connection, %d warm-up + %d samples; bulk: one stream, "
               "128 KiB writes, %.1f s; each per path per round\n",
               opts.rr_warmup, opts.rr_iterations, opts.bulk_seconds);
  std::fprintf(out, "order: %s\n\n", Order(n).c_str());

  const std::string median_hdr = absl::StrCat("median of ", n);
  std::fprintf(out, "%-13s %10s %10s %10s %14s %16s   (%s)\n", "metric", "kernel", "shunt",
               "haproxy", "shunt/kernel", "haproxy/kernel", median_hdr.c_str());
  for (const Row& row : Rows(r)) {
    std::fprintf(out, "%-13s %10s %10s %10s %13.2fx %15.2fx\n", row.label,
                 Fmt(row.fmt, row.kernel).c_str(), Fmt(row.fmt, row.shunt).c_str(),
                 Fmt(row.fmt, row.haproxy).c_str(), Ratio(row.shunt, row.kernel),
                 Ratio(row.haproxy, row.kernel));
  }

  // Per-round values, columns as wide as their longest entry.
  struct Cells {
    std::string label, kernel, shunt, haproxy, ratio;
  };
  std::vector<Cells> cells = {
      {absl::StrCat("rounds r1..r", n), "kernel", "shunt", "haproxy", "shunt/kernel"}};
  for (const Metric& m : kMetrics)
    cells.push_back({m.label, Slashed(PerRound(r.kernel, m.of), m.fmt),
                     Slashed(PerRound(r.shunt, m.of), m.fmt),
                     Slashed(PerRound(r.haproxy, m.of), m.fmt),
                     Slashed(RoundRatios(r.shunt, r.kernel, m.of), "%.2f")});
  size_t w[5] = {0, 0, 0, 0, 0};
  for (const Cells& c : cells) {
    w[0] = std::max(w[0], c.label.size());
    w[1] = std::max(w[1], c.kernel.size());
    w[2] = std::max(w[2], c.shunt.size());
    w[3] = std::max(w[3], c.haproxy.size());
    w[4] = std::max(w[4], c.ratio.size());
  }
  std::fprintf(out, "\n");
  for (const Cells& c : cells)
    std::fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", static_cast<int>(w[0]), c.label.c_str(),
                 static_cast<int>(w[1]), c.kernel.c_str(), static_cast<int>(w[2]), c.shunt.c_str(),
                 static_cast<int>(w[3]), c.haproxy.c_str(), c.ratio.c_str());

  const uint64_t rr_expected =
      2 * kRrMessageBytes * static_cast<uint64_t>(opts.rr_warmup + opts.rr_iterations);
  std::fprintf(out,
               "\nshunt data path per round (bytes_redirected of the bytes the test moved; "
               "FLOW_BACKPRESSURE: times a flow fell back to TCP for a slow reader):\n");
  uint64_t backpressure_total = 0;
  for (const PathResult& s : r.shunt) {
    const lib::Counters& rr = *s.rr_counters;
    const lib::Counters& bulk = *s.bulk_counters;
    const uint64_t backpressure =
        rr[SHUNT_CTR_FLOW_BACKPRESSURE] + bulk[SHUNT_CTR_FLOW_BACKPRESSURE];
    backpressure_total += backpressure;
    std::fprintf(
        out,
        "  r%d: rr %s of %s (%.1f%%), bulk %s of %s (%.1f%%); FLOW_BACKPRESSURE +%lu (rr +%lu, "
        "bulk +%lu), FLOW_RESUMED +%lu, MSG_STAY_TCP +%lu -> %s\n",
        s.round, Human(rr[SHUNT_CTR_BYTES_REDIRECTED]).c_str(), Human(rr_expected).c_str(),
        100.0 * Ratio(rr[SHUNT_CTR_BYTES_REDIRECTED], rr_expected),
        Human(bulk[SHUNT_CTR_BYTES_REDIRECTED]).c_str(), Human(s.bulk.bytes_sent).c_str(),
        100.0 * Ratio(bulk[SHUNT_CTR_BYTES_REDIRECTED], s.bulk.bytes_sent),
        static_cast<unsigned long>(backpressure),
        static_cast<unsigned long>(rr[SHUNT_CTR_FLOW_BACKPRESSURE]),
        static_cast<unsigned long>(bulk[SHUNT_CTR_FLOW_BACKPRESSURE]),
        static_cast<unsigned long>(rr[SHUNT_CTR_FLOW_RESUMED] + bulk[SHUNT_CTR_FLOW_RESUMED]),
        static_cast<unsigned long>(rr[SHUNT_CTR_MSG_STAY_TCP] + bulk[SHUNT_CTR_MSG_STAY_TCP]),
        backpressure == 0 ? "fast path held" : "fast path did NOT hold throughout");
  }
  if (backpressure_total > 0)
    std::fprintf(out, "  FLOW_BACKPRESSURE +%lu over all rounds\n",
                 static_cast<unsigned long>(backpressure_total));
  std::fprintf(out,
               "client pod veth bytes during bulk per round: kernel %s, shunt %s, haproxy %s\n",
               HumanSlashed(r.kernel).c_str(), HumanSlashed(r.shunt).c_str(),
               HumanSlashed(r.haproxy).c_str());

  std::fprintf(out, "\ntargets (from the issue; median shunt / median kernel):\n");
  for (const Target& t : EvaluateTargets(r))
    std::fprintf(out, "  %-40s %5.2fx  %-7s (per round %s)\n", t.what.c_str(), t.ratio,
                 t.met ? "MET" : "NOT MET", Slashed(t.round_ratios, "%.2f").c_str());
}

absl::Status WriteJson(const std::string& path, const BenchResults& r, const SystemInfo& sys,
                       const Options& opts) {
  nlohmann::json targets = nlohmann::json::array();
  for (const Target& t : EvaluateTargets(r))
    targets.push_back({{"target", t.what},
                       {"ratio", t.ratio},
                       {"ratio_of", "median shunt / median kernel"},
                       {"limit", t.limit},
                       {"comparison", t.at_most ? "<=" : ">="},
                       {"met", t.met},
                       {"per_round_ratios", t.round_ratios}});
  nlohmann::json ratios = nlohmann::json::object();
  for (const Row& row : Rows(r)) {
    ratios["shunt/kernel"][row.label] = Ratio(row.shunt, row.kernel);
    ratios["haproxy/kernel"][row.label] = Ratio(row.haproxy, row.kernel);
  }
  nlohmann::json round_ratios = nlohmann::json::object();
  for (const Metric& m : kMetrics) {
    round_ratios["shunt/kernel"][m.label] = RoundRatios(r.shunt, r.kernel, m.of);
    round_ratios["haproxy/kernel"][m.label] = RoundRatios(r.haproxy, r.kernel, m.of);
  }
  nlohmann::json j = {
      {"tool", "shunt-bench"},
      {"date", sys.date_utc},
      {"kernel", sys.kernel_release},
      {"uname", sys.uname},
      {"cpus", sys.cpus},
      {"cpu_dma_latency_us", sys.cpu_dma_latency_us},
      {"parameters",
       {{"rounds", static_cast<int>(r.kernel.size())},
        {"rr_warmup", opts.rr_warmup},
        {"rr_iterations", opts.rr_iterations},
        {"rr_message_bytes", kRrMessageBytes},
        {"bulk_seconds", opts.bulk_seconds},
        {"bulk_write_bytes", kBulkWriteBytes},
        {"bulk_read_buffer_bytes", kBulkReadBytes},
        {"tcp_nodelay", true},
        {"agent_flags", opts.agent_flags},
        {"order", Order(static_cast<int>(r.kernel.size()))},
        {"haproxy",
         "client pod 127.0.0.1:<15001 + 10 x round index> -> server pod <pod IP>:<15006 + 10 x "
         "round index> -> 127.0.0.1:<app port>; a fresh chain per round; mode tcp, nbthread 1, "
         "maxconn 1000, timeout connect 5s, timeout client/server 1h"}}},
      {"paths",
       {{"kernel", PathRoundsJson(r.kernel)},
        {"shunt", PathRoundsJson(r.shunt)},
        {"haproxy", PathRoundsJson(r.haproxy)}}},
      {"ratios", ratios},
      {"ratios_note",
       "ratios of the medians over rounds; per_round_ratios pair round i with round i"},
      {"per_round_ratios", round_ratios},
      {"targets", targets},
  };
  std::ofstream f(path);
  f << j.dump(2) << "\n";
  f.close();
  if (!f) return lib::ErrnoStatus(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

}  // namespace shunt::bench
