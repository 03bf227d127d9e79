#include "tools/bench/iptables_baseline.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "agent/lib/status_macros.h"
#include "test/e2e/harness/sim.h"
#include "tools/bench/service_bench_options.h"

namespace shunt::bench {

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
    absl::StrAppend(&r, "-A KUBE-SERVICES -d ", ServiceVip(i),
                    "/32 -p tcp -m comment --comment \"bench/svc-", i,
                    ":http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-", i, "\n");
  r += "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be "
       "the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n";
  for (int i = 0; i < n; ++i) {
    const std::string svc = absl::StrCat("bench/svc-", i, ":http");
    absl::StrAppend(&r, "-A KUBE-SVC-", i, " ! -s ", cluster_cidr, " -d ", ServiceVip(i),
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

absl::Status LoadKubeProxyRules(const std::string& netns, const std::string& rules_file,
                                bool flush_conntrack) {
  if (flush_conntrack)
    SHUNT_RETURN_IF_ERROR(e2e::Sh(absl::StrCat("ip netns exec ", netns, " conntrack -F")).status());
  return e2e::Sh(absl::StrCat("ip netns exec ", netns, " iptables-restore < ", rules_file))
      .status();
}

// The tables, not just their rules: a flushed iptables-nft table keeps its
// hooks, and with nat's, conntrack tracks every connection of the arms that
// follow.
absl::Status DeleteKubeProxyTables(const std::string& netns) {
  return e2e::Sh(absl::StrCat("ip netns exec ", netns, " nft delete table ip nat && ip netns exec ",
                              netns, " nft delete table ip filter"))
      .status();
}

}  // namespace shunt::bench
