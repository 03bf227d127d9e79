// shunt-service-bench: connections per second through a service address,
// balanced at connect() by Shunt vs kube-proxy-style iptables DNAT rules
// set up by this benchmark in the same run, with --services services
// configured (kube-proxy's iptables mode walks its service rules per new
// connection; Shunt does one hash lookup). See tools/bench/README.md.
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/sim.h"
#include "test/e2e/harness/sock_util.h"
#include "tools/bench/cpu_dma_latency.h"
#include "tools/bench/interrupt.h"
#include "tools/bench/iptables_baseline.h"
#include "tools/bench/latency_stats.h"
#include "tools/bench/service_bench_options.h"
#include "tools/bench/service_load.h"
#include "tools/common/flag_set.h"

namespace shunt::bench {
namespace {

std::string ServicesYaml(int n, const std::vector<std::string>& pod_ips) {
  std::string y;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&y, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-", i,
                    ", namespace: bench}\nspec:\n  clusterIP: ", ServiceVip(i),
                    "\n  ports: [{name: http, port: 80, targetPort: 8080}]\n---\napiVersion: "
                    "discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: svc-",
                    i, "-1\n  namespace: bench\n  labels: {kubernetes.io/service-name: svc-", i,
                    "}\naddressType: IPv4\nports: [{name: http, port: 8080, protocol: TCP}]\n"
                    "endpoints:\n");
    for (const std::string& ip : pod_ips) absl::StrAppend(&y, "- addresses: [\"", ip, "\"]\n");
  }
  return y;
}

// The client's service account may use every server on the service port.
std::string AllowClientYaml() {
  return "---\napiVersion: specs.smi-spec.io/v1alpha4\nkind: TCPRoute\nmetadata: {name: http, "
         "namespace: bench}\nspec: {matches: {ports: [8080]}}\n---\napiVersion: "
         "access.smi-spec.io/v1alpha3\nkind: TrafficTarget\nmetadata: {name: client-to-servers, "
         "namespace: bench}\nspec:\n  destination: {kind: ServiceAccount, name: server, namespace: "
         "bench}\n  sources: [{kind: ServiceAccount, name: client, namespace: bench}]\n  rules: "
         "[{kind: TCPRoute, name: http}]\n";
}

absl::Status WaitServices(e2e::TestNode& node, size_t n) {
  for (int i = 0; i < 600; ++i) {
    auto st = node.AgentStatus();
    if (st.ok() && (*st)["services"]["addresses"].get<size_t>() == n) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError("the agent never had every service in force");
}

struct Result {
  std::vector<double> shunt, iptables, direct;
};

absl::StatusOr<Result> Run(const ServiceBenchOptions& o) {
  SHUNT_ASSIGN_OR_RETURN(auto node, e2e::TestNode::Create("v1"));
  SHUNT_ASSIGN_OR_RETURN(
      e2e::TestPod * client,
      node->AddPod({.name = "client", .namespace_ = "bench", .service_account = "client"}));
  std::vector<e2e::TestPod*> servers;
  std::vector<std::string> server_ips;
  for (int b = 0; b < o.backends; ++b) {
    SHUNT_ASSIGN_OR_RETURN(e2e::TestPod * p, node->AddPod({.name = absl::StrCat("server-", b),
                                                           .namespace_ = "bench",
                                                           .service_account = "server"}));
    servers.push_back(p);
    server_ips.push_back(p->ip);
  }
  SHUNT_RETURN_IF_ERROR(
      node->WriteConfigFile("services.yaml", ServicesYaml(o.services, server_ips)));
  std::vector<std::string> agent_flags = o.agent_flags;
  if (o.policy_allow) {
    SHUNT_RETURN_IF_ERROR(node->WriteConfigFile("policy.yaml", AllowClientYaml()));
    agent_flags.insert(agent_flags.begin(), "--mode=enforce");  // a later --agent-flag wins
  }
  // As on a kube-proxy node, the service range routes somewhere, so the
  // pods' proxy-ARP gateway answers for it and DNAT gets the packets (a
  // veth pair in the node's own namespace: nothing leaves the machine).
  SHUNT_RETURN_IF_ERROR(
      e2e::Sh(absl::StrCat("ip -n ", node->node_netns(),
                           " link add svc0 type veth peer name svc1 && ip -n ", node->node_netns(),
                           " link set svc0 up && ip -n ", node->node_netns(),
                           " link set svc1 up && ip -n ", node->node_netns(),
                           " route add 10.96.0.0/16 dev svc0 && ip -n ", node->node_netns(),
                           " route add 169.254.1.1/32 dev svc0"))
          .status());
  // The client reaches the service range through one gateway address (as
  // Calico does, 169.254.1.1 answered by proxy ARP), not by ARPing for each
  // of the thousand addresses: that would measure the neighbour table.
  SHUNT_RETURN_IF_ERROR(
      e2e::Sh(absl::StrCat("ip netns exec ", client->netns.substr(client->netns.rfind('/') + 1),
                           " ip route add 10.96.0.0/16 via 169.254.1.1 dev eth0 onlink"))
          .status());
  std::vector<lib::UniqueFd> listeners;
  for (e2e::TestPod* p : servers) {
    SHUNT_ASSIGN_OR_RETURN(auto l, node->PodSocket(*p, SOCK_STREAM));
    SHUNT_RETURN_IF_ERROR(e2e::ListenOn(l.get(), 8080));
    // A deep accept queue: a full one drops SYNs, and a 1 s SYN
    // retransmission would swamp what is measured.
    if (listen(l.get(), 65535) != 0) return absl::InternalError("listen backlog");
    listeners.push_back(std::move(l));
  }
  std::atomic<bool> stop{false};
  std::thread acceptor([&] {
    if (o.request_bytes > 0) return ServeRequests(listeners, o.request_bytes, stop);
    std::vector<pollfd> fds;
    for (const auto& l : listeners) fds.push_back({l.get(), POLLIN, 0});
    while (!stop) {
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (auto& p : fds)
        if (p.revents & POLLIN) close(accept(p.fd, nullptr, nullptr));
    }
  });
  const std::string rules_file = node->work_dir() + "/kube-proxy.rules";
  const std::string& ip0 = server_ips[0];
  const std::string cidr = ip0.substr(0, ip0.find('.', ip0.find('.') + 1)) + ".0.0/16";
  std::ofstream(rules_file) << KubeProxyRules(o.services, server_ips, cidr);
  Result r;
  absl::Status err;
  for (int i = 0; i < o.rounds && err.ok(); ++i) {
    const bool all = o.only.empty();
    if (all || o.only == "shunt") {
      std::fprintf(stderr, "round %d/%d: shunt (%d services)\n", i + 1, o.rounds, o.services);
      if (err = node->StartAgent(agent_flags); !err.ok()) break;
      if (err = WaitServices(*node, static_cast<size_t>(o.services)); !err.ok()) break;
      auto s = ConnectionsPerSecond(*node, *client, o);
      if (!s.ok()) {
        err = s.status();
        break;
      }
      r.shunt.push_back(*s);
      if (err = node->StopAgent(SIGTERM); !err.ok()) break;
      if (err = e2e::Sh(absl::StrCat(SHUNT_AGENT_BIN, " --uninstall --bpffs ", node->bpffs()))
                    .status();
          !err.ok())
        break;
    }
    if (all || o.only == "iptables") {
      std::fprintf(stderr, "round %d/%d: iptables DNAT (%d services)\n", i + 1, o.rounds,
                   o.services);
      // By default each round's iptables arm starts from an empty conntrack
      // table, its best case; with --conntrack kept, entries of earlier
      // rounds (10 s in CLOSE after an RST) stay, as on a busy node.
      if (err = LoadKubeProxyRules(node->node_netns(), rules_file, o.fresh_conntrack); !err.ok())
        break;
      auto ipt = ConnectionsPerSecond(*node, *client, o);
      if (auto s = DeleteKubeProxyTables(node->node_netns()); !s.ok() && ipt.ok()) {
        err = s;
        break;
      }
      if (!ipt.ok()) {
        err = ipt.status();
        break;
      }
      r.iptables.push_back(*ipt);
    }
    if (!all && o.only != "direct") continue;
    // Reference: straight to the pod, no service, no agent, no rules.
    auto direct = ConnectionsPerSecond(*node, *client, o, ip0);
    if (!direct.ok()) {
      err = direct.status();
      break;
    }
    r.direct.push_back(*direct);
    if (all)
      std::fprintf(stderr, "  shunt %.0f conn/s, iptables %.0f conn/s, direct %.0f conn/s\n",
                   r.shunt.back(), r.iptables.back(), r.direct.back());
  }
  stop = true;
  acceptor.join();
  if (!err.ok()) return err;
  return r;
}

int Main(int argc, char** argv) {
  auto parsed = ParseServiceBenchOptions(argc, argv);
  if (!parsed.ok()) return cli::UsageError("shunt-service-bench", parsed.status());
  const ServiceBenchOptions& o = *parsed;
  if (o.help) return std::fputs(kServiceBenchUsage, stdout), 0;
  if (std::string why = e2e::PrivilegedSkipReason(); !why.empty())
    return std::fprintf(stderr, "shunt-service-bench: %s\n", why.c_str()), 1;
  if (access("/usr/sbin/iptables-restore", X_OK) != 0 || access("/usr/sbin/nft", X_OK) != 0 ||
      access("/usr/sbin/conntrack", X_OK) != 0)
    return std::fprintf(stderr,
                        "shunt-service-bench: iptables-restore, nft or conntrack missing "
                        "(tools/install-deps.sh "
                        "all)\n"),
           1;
  rlimit rl{65536, 65536};
  setrlimit(RLIMIT_NOFILE, &rl);
  auto dma = CpuDmaLatencyHold::Create();
  if (!dma.ok()) return std::fprintf(stderr, "shunt-service-bench: /dev/cpu_dma_latency\n"), 1;
  InstallInterruptHandler();
  e2e::SweepStale();
  auto r = Run(o);
  if (!r.ok())
    return std::fprintf(stderr, "shunt-service-bench: %s\n",
                        std::string(r.status().message()).c_str()),
           1;
  if (!o.only.empty()) {
    const auto& v = o.only == "shunt" ? r->shunt : o.only == "iptables" ? r->iptables : r->direct;
    std::printf("%s only: %.0f conn/s (median of %d rounds; no ratio without the others)\n",
                o.only.c_str(), Median(v), o.rounds);
    return 0;
  }
  const double shunt = Median(r->shunt), ipt = Median(r->iptables), ratio = shunt / ipt,
               direct = Median(r->direct);
  utsname u{};
  uname(&u);
  std::printf("shunt-service-bench  kernel %s  %ld CPUs  (/dev/cpu_dma_latency held at 0)\n",
              u.release, sysconf(_SC_NPROCESSORS_ONLN));
  const std::string timed =
      o.request_bytes == 0
          ? std::string("connect + abortive close timed")
          : absl::StrFormat(
                "connect, %d-byte request, %d-byte response, abortive close timed; %d "
                "connections in flight, client and server pinned to CPUs 0 and 1",
                o.request_bytes, o.request_bytes, o.window);
  std::printf(
      "new connections per second to a random one of %d service addresses with %d backend%s each "
      "(medians of %d interleaved rounds, %d connections each; %s)\n",
      o.services, o.backends, o.backends == 1 ? "" : "s", o.rounds, o.connections, timed.c_str());
  std::printf("  iptables DNAT, kube-proxy layout   %9.0f conn/s  (conntrack %s)\n", ipt,
              o.fresh_conntrack ? "emptied before each round" : "kept across rounds");
  std::printf("  shunt, balanced at connect()       %9.0f conn/s%s\n", shunt,
              o.backends > 1 ? "  (p2c-ewma: two candidates and their scores per connect)" : "");
  std::printf("    (whole mesh: %s, telemetry and short-circuit as configured)\n",
              o.policy_allow ? "enforce mode, a TrafficTarget lets the client in"
                             : "permissive mode, no TrafficTarget, every connection reported");
  std::printf("  (reference: straight to the pod, no agent, no rules: %.0f conn/s)\n", direct);
  // Even a mesh that cost nothing could not beat this: the rules' own cost
  // over the plain path, which depends on the machine (syscall and
  // interrupt costs weigh on all three alike).
  const double ceiling = direct / ipt;
  std::printf(
      "  shunt / iptables: %.2fx   target >= 1.5x: %s   (ceiling on this machine, direct / "
      "iptables: %.2fx)\n",
      ratio, ratio >= 1.5 ? "MET" : "NOT MET", ceiling);
  // The same comparison without the machine's plain-path cost: what each
  // adds to a connection over going straight to the pod.
  const double direct_us = 1e6 / direct, shunt_extra = 1e6 / shunt - direct_us,
               ipt_extra = 1e6 / ipt - direct_us;
  std::printf(
      "  added per connection over direct (%.2f us): shunt %.2f us, iptables %.2f us (shunt "
      "adds %.2fx of what iptables adds)\n",
      direct_us, shunt_extra, ipt_extra, ipt_extra > 0 ? shunt_extra / ipt_extra : 0.0);
  std::printf("  per round: shunt");
  for (double v : r->shunt) std::printf(" %.0f", v);
  std::printf("; iptables");
  for (double v : r->iptables) std::printf(" %.0f", v);
  std::printf("\n");
  nlohmann::json j = {{"kernel", u.release},
                      {"services", o.services},
                      {"backends", o.backends},
                      {"conntrack", o.fresh_conntrack ? "fresh" : "kept"},
                      {"policy", o.policy_allow ? "allow" : "none"},
                      {"median_direct_per_s", direct},
                      {"ceiling", ceiling},
                      {"connections", o.connections},
                      {"request_bytes", o.request_bytes},
                      {"window", o.request_bytes > 0 ? o.window : 0},
                      {"rounds", o.rounds},
                      {"shunt_per_s", r->shunt},
                      {"iptables_per_s", r->iptables},
                      {"median_shunt_per_s", shunt},
                      {"median_iptables_per_s", ipt},
                      {"ratio", ratio}};
  std::ofstream(o.json_path) << j.dump(2) << "\n";
  std::printf("JSON: %s\n", o.json_path.c_str());
  return 0;
}

}  // namespace
}  // namespace shunt::bench

int main(int argc, char** argv) { return shunt::bench::Main(argc, argv); }
