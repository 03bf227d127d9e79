// shunt-kube-bench: the kube source at cluster scale (issue 13 item 6),
// against the fake API server (test/kubeapi) in a simulated node's
// namespace. See tools/bench/README.md.
//  1. The agent syncs an empty cluster (its baseline memory), then a list
//     of --pods pods on other nodes arrives: time until the last is in the
//     kernel's ipcache, and the agent's memory growth.
//  2. --rate events a second for --seconds: each moves one pod to a new IP;
//     the time from the event to its ipcache entry, p50/p99/max, read from
//     the pinned map itself.
//  3. Every watch gets 410 and the agent relists an unchanged cluster: the
//     map writers must write and delete nothing.
#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "agent/lib/pin_layout.h"
#include "agent/lib/pinned_maps.h"
#include "test/e2e/harness/eventually.h"
#include "test/e2e/harness/sim.h"
#include "test/kubeapi/driver/fake_apiserver.h"
#include "tools/bench/latency_stats.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// VmRSS of `pid` in KiB.
long RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

// Pod i of the cluster: on one of 100 other nodes, in one of 50
// namespaces, with one of 10 service accounts; `generation` picks its IP
// range, so a moved pod has an address no earlier pod had.
std::string PodIp(int i, int generation) {
  return absl::StrCat("10.", 100 + generation, ".", (i >> 8) & 255, ".", i & 255);
}
nlohmann::json Pod(int i, int generation) {
  return kubeapi::PodObject(absl::StrCat("ns-", i % 50), absl::StrCat("pod-", i),
                            absl::StrCat("node-", i % 100), PodIp(i, generation),
                            absl::StrCat("sa-", i % 10));
}

uint32_t Be(const std::string& dotted) {
  in_addr a{};
  inet_pton(AF_INET, dotted.c_str(), &a);
  return a.s_addr;
}

struct Totals {
  uint64_t written = 0, deleted = 0;
};
absl::StatusOr<Totals> MapWrites(e2e::TestNode& node) {
  auto st = node.AgentStatus();
  if (!st.ok()) return st.status();
  Totals t;
  for (const nlohmann::json* a :
       {&(*st)["last_apply"], &(*st)["policy"]["last_apply"], &(*st)["services"]["last_apply"]}) {
    t.written += (*a)["written_total"].get<uint64_t>();
    t.deleted += (*a)["deleted_total"].get<uint64_t>();
  }
  return t;
}

int Run(int pods, int rate, int seconds) {
  e2e::SweepStale();
  auto node = e2e::TestNode::Create("kb");
  if (!node.ok()) {
    std::fprintf(stderr, "kube-bench: %s\n", std::string(node.status().message()).c_str());
    return 1;
  }
  auto api = kubeapi::FakeApiServer::Start({"--bookmark-interval", "10"},
                                           "/run/netns/" + (*node)->node_netns());
  if (!api.ok()) {
    std::fprintf(stderr, "kube-bench: %s\n", std::string(api.status().message()).c_str());
    return 1;
  }
  (*node)->UseApiServer(api->get());
  auto fail = [&](const absl::Status& s) {
    std::fprintf(stderr, "kube-bench: %s\n--- agent log ---\n%s\n",
                 std::string(s.message()).c_str(), (*node)->AgentLog().c_str());
    return 1;
  };
  if (auto s = (*node)->StartAgent(); !s.ok()) return fail(s);
  auto ready = e2e::Eventually(
      "agent ready",
      [&]() -> absl::Status {
        auto st = (*node)->AgentStatus();
        if (!st.ok()) return st.status();
        return (*st)["ready"] == true ? absl::OkStatus() : absl::UnavailableError(st->dump());
      },
      20000);
  if (!ready.ok()) return fail(ready);
  const pid_t agent = (*node)->agent_pid();
  const long rss0 = RssKib(agent);
  auto maps = lib::PinnedMaps::Open(lib::PinLayout((*node)->bpffs()), /*read_only=*/true);
  if (!maps.ok()) return fail(maps.status());
  auto ipcache = (*maps)->ipcache();

  // 1. The list.
  std::printf("== %d pods on 100 other nodes arrive (list/watch)\n", pods);
  const auto t_list = Clock::now();
  for (int first = 0; first < pods; first += 2000) {
    nlohmann::json batch = nlohmann::json::array();
    for (int i = first; i < std::min(pods, first + 2000); ++i) batch.push_back(Pod(i, 0));
    if (auto r = (*api)->Bulk(batch); !r.ok()) return fail(r.status());
  }
  auto listed = e2e::Eventually(
      "every pod in the ipcache",
      [&]() -> absl::Status {
        for (int i : {0, pods / 2, pods - 1})
          if (!ipcache.Lookup(Be(PodIp(i, 0))).ok()) return absl::UnavailableError(PodIp(i, 0));
        return absl::OkStatus();
      },
      60000);
  if (!listed.ok()) return fail(listed);
  const double list_ms = MsSince(t_list);
  const long rss1 = RssKib(agent);
  std::printf("  in the kernel's ipcache after %.0f ms; agent RSS %ld KiB -> %ld KiB (+%.1f MiB)\n",
              list_ms, rss0, rss1, (rss1 - rss0) / 1024.0);

  // 2. Events at a steady rate; a poller reads the pinned map.
  std::printf("== %d events/s for %d s: a pod moves to a new IP\n", rate, seconds);
  std::mutex mu;
  std::map<uint32_t, Clock::time_point> pending;
  std::vector<double> latencies_ms;
  std::atomic<bool> done{false};
  std::thread poller([&] {
    while (!done) {
      std::vector<std::pair<uint32_t, Clock::time_point>> look;
      {
        std::lock_guard lock(mu);
        look.assign(pending.begin(), pending.end());
      }
      for (const auto& [ip, sent] : look) {
        if (!ipcache.Lookup(ip).ok()) continue;
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
        std::lock_guard lock(mu);
        pending.erase(ip);
        latencies_ms.push_back(ms);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  const int events = rate * seconds;
  const auto period = std::chrono::microseconds(1'000'000 / rate);
  auto next = Clock::now();
  int sent = 0;
  for (int k = 0; k < events; ++k) {
    std::this_thread::sleep_until(next);
    next += period;
    const int i = (k * 7919) % pods;  // spread over the cluster
    const nlohmann::json pod = Pod(i, 1 + k / pods);
    {
      std::lock_guard lock(mu);
      pending[Be(pod["status"]["podIP"].get<std::string>())] = Clock::now();
    }
    if (auto r = (*api)->Apply(pod); !r.ok()) return fail(r.status());
    ++sent;
  }
  auto drained = e2e::Eventually(
      "every event in the map",
      [&]() -> absl::Status {
        std::lock_guard lock(mu);
        return pending.empty() ? absl::OkStatus()
                               : absl::UnavailableError(absl::StrCat(pending.size(), " pending"));
      },
      30000);
  done = true;
  poller.join();
  if (!drained.ok()) return fail(drained);
  const long rss2 = RssKib(agent);
  std::vector<int64_t> ns;
  for (double ms : latencies_ms) ns.push_back(static_cast<int64_t>(ms * 1e6));
  const LatencySummary stats = Summarize(ns);
  std::printf("  %d events; event -> ipcache entry: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", sent,
              stats.p50_us / 1000, stats.p99_us / 1000, stats.max_us / 1000);
  std::printf("  agent RSS %ld KiB: +%.1f MiB over the empty cluster (goal: under 100 MiB)\n", rss2,
              (rss2 - rss0) / 1024.0);

  // 3. A relist of an unchanged cluster.
  std::printf("== every watch expires (410) and the agent relists\n");
  auto before = MapWrites(**node);
  if (!before.ok()) return fail(before.status());
  auto gen = (*node)->AppliedGeneration();
  if (!gen.ok()) return fail(gen.status());
  const auto t_relist = Clock::now();
  if (auto r = (*api)->Fault({{"expire_watches", true}}); !r.ok()) return fail(r.status());
  if (auto s = (*node)->WaitGeneration(*gen, 30000); !s.ok()) return fail(s);
  // Every resource relisted: each reports watching again after its replace.
  auto relisted = e2e::Eventually(
      "all resources watching",
      [&]() -> absl::Status {
        auto st = (*node)->AgentStatus();
        if (!st.ok()) return st.status();
        for (const auto& r : (*st)["source"]["resources"])
          if (r["state"] != "watching") return absl::UnavailableError(r.dump());
        return absl::OkStatus();
      },
      30000);
  if (!relisted.ok()) return fail(relisted);
  const double relist_ms = MsSince(t_relist);
  auto after = MapWrites(**node);
  if (!after.ok()) return fail(after.status());
  std::printf("  relisted in %.0f ms; map entries written %lu, deleted %lu (goal: 0 and 0)\n",
              relist_ms, static_cast<unsigned long>(after->written - before->written),
              static_cast<unsigned long>(after->deleted - before->deleted));
  const bool ok = stats.p99_us < 100'000 && (rss2 - rss0) < 100 * 1024 &&
                  after->written == before->written && after->deleted == before->deleted;
  std::printf("\n%s\n", ok ? "RESULT: all goals met" : "RESULT: a goal was missed");
  return ok ? 0 : 3;
}

}  // namespace
}  // namespace shunt::bench

namespace {

constexpr char kUsage[] =
    "usage: shunt-kube-bench [--pods N (10000)] [--rate EVENTS_PER_S (100)] [--seconds N (20)]\n"
    "The kube source at scale against the fake API server (test/kubeapi): a list, a steady\n"
    "rate of watch events, a relist after 410. Needs root (namespaces, cgroups, BPF).\n";

}  // namespace

int main(int argc, char** argv) {
  int pods = 10000, rate = 100, seconds = 20;
  shunt::cli::FlagSet flags;
  flags.Int("pods", &pods, 1, 60000);
  flags.Int("rate", &rate, 1, 1000);
  flags.Int("seconds", &seconds, 1, 3600);
  auto parsed = flags.Parse(argc, argv);
  if (!parsed.ok()) return shunt::cli::UsageError("shunt-kube-bench", parsed.status());
  if (parsed->help) return std::fputs(kUsage, stdout), 0;
  if (!parsed->args.empty())
    return shunt::cli::UsageError(
        "shunt-kube-bench",
        absl::InvalidArgumentError(absl::StrCat("unexpected argument '", parsed->args[0], "'")));
  if (std::string why = shunt::e2e::PrivilegedSkipReason(); !why.empty()) {
    std::fprintf(stderr, "shunt-kube-bench: %s\n", why.c_str());
    return 1;
  }
  return shunt::bench::Run(pods, rate, seconds);
}
