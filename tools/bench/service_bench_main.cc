// shunt-service-bench: connections per second through a service address,
// balanced at connect() by Shunt vs kube-proxy-style iptables DNAT rules
// set up by this benchmark in the same run, with --services services
// configured (kube-proxy's iptables mode walks its service rules per new
// connection; Shunt does one hash lookup). See tools/bench/README.md.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "nlohmann/json.hpp"
#include "test/e2e/harness/sim.h"
#include "test/e2e/harness/sock_util.h"
#include "tools/bench/blocking_io.h"
#include "tools/bench/cpu_dma_latency.h"
#include "tools/bench/interrupt.h"
#include "tools/bench/latency_stats.h"

namespace shunt::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int services = 1000;
  int connections = 10000;
  int rounds = 5;
  int backends = 1;             // pods behind every service (P2C needs at least 2)
  bool fresh_conntrack = true;  // --conntrack fresh|kept: iptables' table emptied before each round
  // --policy allow: the mesh as it is meant to run, enforce mode with a
  // TrafficTarget that lets the client in; none: permissive mode without
  // any TrafficTarget, every connection audited and reported as a would-be
  // denial (a mesh being rolled out).
  bool policy_allow = true;
  std::string json_path = "service-bench-results.json";
  std::vector<std::string> agent_flags;  // --agent-flag, e.g. --telemetry=false
  std::string only;                      // --only shunt|iptables|direct: one case, for profiling
  // --request N: every connection sends an N-byte request and reads an
  // N-byte response before it closes (0: connect + close only).
  int request_bytes = 0;
  int window = 16;  // --window: connections open at once in --request mode
};

std::string Vip(int i) { return absl::StrCat("10.96.", 1 + i / 250, ".", 1 + i % 250); }

std::string ServicesYaml(int n, const std::vector<std::string>& pod_ips) {
  std::string y;
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&y, "---\napiVersion: v1\nkind: Service\nmetadata: {name: svc-", i,
                    ", namespace: bench}\nspec:\n  clusterIP: ", Vip(i),
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

// What kube-proxy (iptables mode, v1.29) installs for `n` ClusterIP
// services with the same endpoints each, as iptables-save prints it on a
// node: nat KUBE-SERVICES walked per new connection (one rule per service
// port, then the NodePort rule), KUBE-SVC-* (masquerade mark for clients
// outside the cluster CIDR, then one endpoint chosen by `statistic` rules
// with probabilities 1/k, 1/(k-1), ...), KUBE-SEP-* (hairpin mark, DNAT),
// KUBE-POSTROUTING; filter FORWARD/INPUT/OUTPUT chains with conntrack
// matches. Chain names use indices where kube-proxy uses hashes.
std::string KubeProxyRules(int n, const std::vector<std::string>& pod_ips,
                           const std::string& cluster_cidr) {
  const size_t k = pod_ips.size();
  std::string r =
      "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
      ":POSTROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n"
      ":KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n";
  for (int i = 0; i < n; ++i) {
    absl::StrAppend(&r, ":KUBE-SVC-", i, " - [0:0]\n");
    for (size_t e = 0; e < k; ++e) absl::StrAppend(&r, ":KUBE-SEP-", i, "-", e, " - [0:0]\n");
  }
  r += "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
       "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
       "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"
       "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
       "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
       "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
       "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j "
       "MASQUERADE --random-fully\n";
  for (int i = 0; i < n; ++i)
    absl::StrAppend(&r, "-A KUBE-SERVICES -d ", Vip(i),
                    "/32 -p tcp -m comment --comment \"bench/svc-", i,
                    ":http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-", i, "\n");
  r += "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
       "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
  for (int i = 0; i < n; ++i) {
    const std::string svc = absl::StrCat("bench/svc-", i, ":http");
    absl::StrAppend(&r, "-A KUBE-SVC-", i, " ! -s ", cluster_cidr, " -d ", Vip(i),
                    "/32 -p tcp -m comment --comment \"", svc,
                    " cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ\n");
    for (size_t e = 0; e < k; ++e) {
      const std::string& ip = pod_ips[e];
      absl::StrAppend(&r, "-A KUBE-SVC-", i, " -m comment --comment \"", svc, " -> ", ip,
                      ":8080\"");
      if (e + 1 < k)
        absl::StrAppend(&r, " -m statistic --mode random --probability ",
                        absl::StrFormat("%0.11f", 1.0 / static_cast<double>(k - e)));
      absl::StrAppend(&r, " -j KUBE-SEP-", i, "-", e, "\n");
      absl::StrAppend(&r, "-A KUBE-SEP-", i, "-", e, " -s ", ip, "/32 -m comment --comment \"", svc,
                      "\" -j KUBE-MARK-MASQ\n");
      absl::StrAppend(&r, "-A KUBE-SEP-", i, "-", e, " -p tcp -m comment --comment \"", svc,
                      "\" -m tcp -j DNAT --to-destination ", ip, ":8080\n");
    }
  }
  r += "COMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
       ":KUBE-PROXY-FIREWALL - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n"
       ":KUBE-FIREWALL - [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n"
       "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
       "firewall\" -j "
       "KUBE-PROXY-FIREWALL\n"
       "-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n"
       "-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
       "service portals\" "
       "-j KUBE-EXTERNAL-SERVICES\n"
       "-A INPUT -j KUBE-FIREWALL\n"
       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
       "firewall\" -j "
       "KUBE-PROXY-FIREWALL\n"
       "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n"
       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
       "-j KUBE-SERVICES\n"
       "-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible "
       "service portals\" "
       "-j KUBE-EXTERNAL-SERVICES\n"
       "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer "
       "firewall\" -j "
       "KUBE-PROXY-FIREWALL\n"
       "-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" "
       "-j KUBE-SERVICES\n"
       "-A OUTPUT -j KUBE-FIREWALL\n"
       "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming "
       "localnet "
       "connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n"
       "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
       "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark "
       "0x4000/0x4000 -j "
       "ACCEPT\n"
       "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack "
       "--ctstate "
       "RELATED,ESTABLISHED -j ACCEPT\n"
       "COMMIT\n";
  return r;
}

// --request mode runs the client on CPU 0 and the server on CPU 1: left to
// the scheduler, they shared a CPU in some rounds and not in others (rounds
// varied by 20%). The client is pinned only while it measures, so the agent
// it starts does not inherit the pin. cpu < 0: every CPU again.
void PinToCpu(int cpu) {
  const int n = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c = 0; c < n; ++c)
    if (cpu < 0 || c == cpu % n) CPU_SET(c, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

// --request mode, like a load generator with --window connections in
// flight: each window's connections connect and send their request, then
// each reads its whole response and closes (abortively, as below). The
// server answers from another thread (ServeRequests).
absl::Status Exchange(std::vector<lib::UniqueFd>& socks, const std::vector<sockaddr_in>& to,
                      const Options& o, int done) {
  const std::string request(static_cast<size_t>(o.request_bytes), 'q');
  std::string response(static_cast<size_t>(o.request_bytes), '\0');
  for (size_t w = 0; w < socks.size(); w += static_cast<size_t>(o.window)) {
    const size_t end = std::min(socks.size(), w + static_cast<size_t>(o.window));
    for (size_t i = w; i < end; ++i) {
      // Timeouts: a response that never comes fails the run instead of hanging it.
      SHUNT_RETURN_IF_ERROR(TuneSocket(socks[i].get(), 5000));
      if (connect(socks[i].get(), reinterpret_cast<const sockaddr*>(&to[i]), sizeof(to[i])) != 0)
        return absl::InternalError(absl::StrCat("connect #", done + i, ": ", strerror(errno)));
      if (absl::Status st = WriteFull(socks[i].get(), request.data(), request.size()); !st.ok())
        return absl::Status(st.code(), absl::StrCat("request #", done + i, ": ", st.message()));
    }
    for (size_t i = w; i < end; ++i) {
      if (absl::Status st = ReadFull(socks[i].get(), response.data(), response.size()); !st.ok())
        return absl::Status(st.code(), absl::StrCat("response #", done + i, ": ", st.message()));
      socks[i].Reset();
    }
  }
  return absl::OkStatus();
}

// connect() + abortive close (no TIME_WAIT to exhaust ports) of `n`
// connections to random service addresses; sockets are made in the pod
// ahead of time in batches, so only connect and close are timed.
absl::StatusOr<double> ConnectionsPerSecond(e2e::TestNode& node, const e2e::TestPod& client,
                                            const Options& o, const std::string& direct_ip = "") {
  std::mt19937 rng(42);
  double seconds = 0;
  int done = 0;
  const int batch = 1000;
  while (done < o.connections) {
    std::vector<lib::UniqueFd> socks;
    std::vector<sockaddr_in> to;
    for (int i = 0; i < batch && done + i < o.connections; ++i) {
      SHUNT_ASSIGN_OR_RETURN(auto s, node.PodSocket(client, SOCK_STREAM));
      linger lg{1, 0};
      setsockopt(s.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      socks.push_back(std::move(s));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(direct_ip.empty() ? 80 : 8080);
      const std::string ip =
          direct_ip.empty() ? Vip(static_cast<int>(rng() % o.services)) : direct_ip;
      inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
      to.push_back(a);
    }
    const auto t0 = Clock::now();
    if (o.request_bytes == 0) {
      for (size_t i = 0; i < socks.size(); ++i) {
        if (connect(socks[i].get(), reinterpret_cast<sockaddr*>(&to[i]), sizeof(to[i])) != 0)
          return absl::InternalError(absl::StrCat("connect #", done + i, ": ", strerror(errno)));
        socks[i].Reset();
      }
    } else {
      PinToCpu(0);
      absl::Status st = Exchange(socks, to, o, done);
      PinToCpu(-1);
      SHUNT_RETURN_IF_ERROR(st);
    }
    seconds += std::chrono::duration<double>(Clock::now() - t0).count();
    done += static_cast<int>(socks.size());
    SHUNT_RETURN_IF_ERROR(CheckInterrupted());
  }
  return o.connections / seconds;
}

// The servers of --request mode, on one thread like an event-driven
// server: accept, read the request, answer with as many bytes, close (an
// orderly FIN; the client's abortive close then ends the connection
// without a TIME_WAIT on either side).
void ServeRequests(const std::vector<lib::UniqueFd>& listeners, int bytes,
                   const std::atomic<bool>& stop) {
  PinToCpu(1);
  lib::UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  for (const auto& l : listeners) {
    fcntl(l.get(), F_SETFL, fcntl(l.get(), F_GETFL) | O_NONBLOCK);  // accept until EAGAIN
    epoll_event ev{.events = EPOLLIN, .data = {.fd = l.get()}};
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, l.get(), &ev);
  }
  auto is_listener = [&](int fd) {
    for (const auto& l : listeners)
      if (l.get() == fd) return true;
    return false;
  };
  const std::string response(static_cast<size_t>(bytes), 'r');
  std::vector<char> buf(static_cast<size_t>(bytes));
  std::vector<size_t> got(65536);  // request bytes read so far, by fd
  epoll_event evs[64];
  while (!stop) {
    const int n = epoll_wait(ep.get(), evs, 64, 20);
    for (int i = 0; i < n; ++i) {
      const int fd = evs[i].data.fd;
      if (is_listener(fd)) {
        for (int c; (c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0;) {
          if (static_cast<size_t>(c) >= got.size()) got.resize(static_cast<size_t>(c) * 2);
          got[static_cast<size_t>(c)] = 0;
          epoll_event ev{.events = EPOLLIN, .data = {.fd = c}};
          epoll_ctl(ep.get(), EPOLL_CTL_ADD, c, &ev);
        }
        continue;
      }
      size_t& have = got[static_cast<size_t>(fd)];
      const ssize_t r = read(fd, buf.data(), buf.size() - have);
      if (r > 0) have += static_cast<size_t>(r);
      if (r > 0 && have < buf.size()) continue;
      // A whole request: answer it. Nothing (EOF, reset) or a short write:
      // the client sees it as a failed exchange.
      if (r > 0) (void)!write(fd, response.data(), response.size());
      if (r >= 0 || errno != EAGAIN) close(fd);
    }
  }
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

absl::StatusOr<Result> Run(const Options& o) {
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
      if (o.fresh_conntrack) {
        if (err = e2e::Sh(absl::StrCat("ip netns exec ", node->node_netns(), " conntrack -F"))
                      .status();
            !err.ok())
          break;
      }
      if (err = e2e::Sh(absl::StrCat("ip netns exec ", node->node_netns(), " iptables-restore < ",
                                     rules_file))
                    .status();
          !err.ok())
        break;
      auto ipt = ConnectionsPerSecond(*node, *client, o);
      // Remove the tables, not just their rules: a flushed iptables-nft
      // table keeps its hooks, and with nat's, conntrack tracks every
      // connection of the arms that follow.
      if (auto s = e2e::Sh(absl::StrCat("ip netns exec ", node->node_netns(),
                                        " nft delete table ip nat && ip netns exec ",
                                        node->node_netns(), " nft delete table ip filter"));
          !s.ok() && ipt.ok()) {
        err = s.status();
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
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](int& v, int lo, int hi) {
      return i + 1 < argc && absl::SimpleAtoi(argv[++i], &v) && v >= lo && v <= hi;
    };
    if (a == "--services" && next(o.services, 1, 60000)) continue;
    if (a == "--connections" && next(o.connections, 1000, 10000000)) continue;
    if (a == "--rounds" && next(o.rounds, 1, 99)) continue;
    if (a == "--backends" && next(o.backends, 1, 64)) continue;
    if (a == "--request" && next(o.request_bytes, 0, 65536)) continue;
    if (a == "--window" && next(o.window, 1, 1000)) continue;
    if (a == "--agent-flag" && i + 1 < argc) {
      o.agent_flags.push_back(argv[++i]);
      continue;
    }
    if (a == "--conntrack" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v == "fresh" || v == "kept") {
        o.fresh_conntrack = v == "fresh";
        continue;
      }
      std::fprintf(stderr, "shunt-service-bench: --conntrack: '%s' is not fresh or kept\n",
                   v.c_str());
      return 2;
    }
    if (a == "--policy" && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v == "allow" || v == "none") {
        o.policy_allow = v == "allow";
        continue;
      }
      std::fprintf(stderr, "shunt-service-bench: --policy: '%s' is not allow or none\n", v.c_str());
      return 2;
    }
    if (a == "--only" && i + 1 < argc) {
      o.only = argv[++i];
      if (o.only == "shunt" || o.only == "iptables" || o.only == "direct") continue;
      std::fprintf(stderr, "shunt-service-bench: --only: '%s' is not shunt, iptables or direct\n",
                   o.only.c_str());
      return 2;
    }
    if (a == "--json" && i + 1 < argc) {
      o.json_path = argv[++i];
      continue;
    }
    std::fprintf(stderr,
                 "usage: shunt-service-bench [--services N] [--connections N] [--rounds N] "
                 "[--backends N] [--request BYTES [--window N]] [--conntrack fresh|kept] "
                 "[--policy allow|none] [--agent-flag F]... "
                 "[--only shunt|iptables|direct] [--json PATH]\n");
    return a == "-h" || a == "--help" ? 0 : 2;
  }
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
  std::printf("  shunt / iptables: %.2fx   target >= 1.5x: %s   (ceiling on this machine, direct / "
              "iptables: %.2fx)\n",
              ratio, ratio >= 1.5 ? "MET" : "NOT MET", ceiling);
  // The same comparison without the machine's plain-path cost: what each
  // adds to a connection over going straight to the pod.
  const double direct_us = 1e6 / direct, shunt_extra = 1e6 / shunt - direct_us,
               ipt_extra = 1e6 / ipt - direct_us;
  std::printf("  added per connection over direct (%.2f us): shunt %.2f us, iptables %.2f us (shunt "
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
