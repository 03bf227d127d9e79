// shunt-bench: pod-to-pod latency and throughput on one simulated node,
// kernel TCP vs the Shunt short-circuit vs a haproxy sidecar chain.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "tools/bench/bench_run.h"
#include "tools/bench/cpu_dma_latency.h"
#include "tools/bench/haproxy_chain.h"
#include "tools/bench/interrupt.h"
#include "tools/bench/options.h"
#include "tools/bench/report.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {
namespace {

int Fail(const std::string& msg) {
  std::fprintf(stderr, "shunt-bench: %s\n", msg.c_str());
  return 1;
}

int Main(int argc, char** argv) {
  auto opts = ParseOptions(argc, argv);
  if (!opts.ok()) return cli::UsageError("shunt-bench", opts.status());
  if (opts->help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (geteuid() != 0)
    return Fail(
        "must run as root (network namespaces, cgroups, BPF, /dev/cpu_dma_latency): "
        "sudo build/tools/bench/shunt-bench");
  if (access(kHaproxyBin, X_OK) != 0)
    return Fail(std::string(kHaproxyBin) +
                " not found: the sidecar baseline needs haproxy; install with "
                "tools/install-deps.sh");
  if (access(SHUNT_AGENT_BIN, X_OK) != 0)
    return Fail(std::string("agent binary ") + SHUNT_AGENT_BIN +
                " not found: build it with `make shunt-agent`");

  auto hold = CpuDmaLatencyHold::Create();
  if (!hold.ok())
    return Fail(std::string("cannot hold /dev/cpu_dma_latency at 0 (latency numbers would include "
                            "~50 us CPU wake-ups): ") +
                std::string(hold.status().message()));
  std::fprintf(stderr,
               "holding /dev/cpu_dma_latency at 0 us for the whole run (kernel reports %d)\n",
               (*hold)->EffectiveUs());

  InstallInterruptHandler();  // so Ctrl-C still tears the node down
  auto results = RunBench(*opts);
  if (!results.ok()) return Fail(std::string(results.status().ToString()));

  const SystemInfo sys = CollectSystemInfo((*hold)->EffectiveUs());
  PrintReport(stdout, *results, sys, *opts);
  if (auto s = WriteJson(opts->json_path, *results, sys, *opts); !s.ok())
    return Fail(std::string(s.ToString()));
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(opts->json_path, ec);
  std::printf("\nJSON: %s\n", ec ? opts->json_path.c_str() : abs.c_str());
  return 0;
}

}  // namespace
}  // namespace shunt::bench

int main(int argc, char** argv) { return shunt::bench::Main(argc, argv); }
