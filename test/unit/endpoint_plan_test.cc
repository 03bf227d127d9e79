// MakePlan: pods + their sandboxes (found by kubelet cgroup) -> endpoints,
// ipcache and pod statuses.
#include "agent/endpoints/endpoint_plan.h"

#include <arpa/inet.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test/unit/ipv4_util.h"

namespace shunt::endpoints {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kNode[] = "node-a";
constexpr uint64_t kPlanCookie = 1;

using test_util::Ipv4Be;

model::Pod MakePod(const std::string& ns, const std::string& name, const std::string& ip,
                   const std::string& node = kNode, const std::string& sa = "default") {
  return {.namespace_ = ns,
          .name = name,
          .uid = "uid-" + name,
          .service_account = sa,
          .node_name = node,
          .ip = ip,
          .ip_be = Ipv4Be(ip)};
}

class EndpointPlanTest : public ::testing::Test {
 protected:
  // As the agent does: plan, then keep only the identities still in use.
  Plan Make() {
    Plan plan = MakePlan({.node = kNode,
                          .pods = &pods_,
                          .namespaces = &namespaces_,
                          .sandboxes = &sandboxes_,
                          .own_netns_cookie = kPlanCookie},
                         ids_);
    ids_.Retain(plan.identities);
    return plan;
  }
  // Pod `name`'s sandbox: its cgroup's oldest process is in the namespace
  // `cookie`, which holds `ips`, with `links` as its node-side veths.
  void Sandbox(const std::string& name, uint64_t cookie, const std::vector<std::string>& ips,
               std::vector<int> links = {}) {
    netns::PodSandbox sb{.cgroup = "/cg/pod" + name, .pid = static_cast<pid_t>(100 + cookie)};
    sb.netns = {.inode = 4026530000 + cookie,
                .path = "/proc/" + std::to_string(sb.pid) + "/ns/net",
                .cookie = cookie};
    for (const std::string& ip : ips) sb.netns.ipv4_be.push_back(Ipv4Be(ip));
    sb.host_ifindexes = std::move(links);
    sandboxes_["uid-" + name] = sb;
  }
  void Missing(const std::string& name, const std::string& problem) {
    sandboxes_["uid-" + name] = {.problem = problem};
  }

  std::vector<model::Pod> pods_;
  std::vector<model::Namespace> namespaces_;
  std::map<std::string, netns::PodSandbox> sandboxes_;
  IdentityAllocator ids_;
};

TEST_F(EndpointPlanTest, NothingInNothingOut) {
  Plan plan = Make();
  EXPECT_THAT(plan.endpoints, IsEmpty());
  EXPECT_THAT(plan.ipcache, IsEmpty());
  EXPECT_THAT(plan.local_pods, IsEmpty());
  EXPECT_EQ(ids_.size(), 0u);
}

TEST_F(EndpointPlanTest, LocalPodIsBoundToTheNamespaceOfItsCgroup) {
  pods_ = {MakePod("demo", "client", "10.0.0.5", kNode, "client-sa")};
  Sandbox("client", 11, {"172.16.0.1", "10.0.0.5"}, {21});
  Plan plan = Make();

  ASSERT_THAT(plan.endpoints, SizeIs(1));
  ASSERT_EQ(plan.endpoints.count(11), 1u);
  const EndpointEntry& e = plan.endpoints.at(11);
  const uint32_t id = ids_.Get({"demo", "client-sa"});
  EXPECT_EQ(id, kFirstIdentity);
  EXPECT_EQ(e.ep.ip4, Ipv4Be("10.0.0.5"));
  EXPECT_EQ(e.ep.identity, id);
  EXPECT_EQ(e.ep.flags, SHUNT_EP_F_SHORT_CIRCUIT);
  EXPECT_EQ(e.ep.pad, 0u);
  EXPECT_STREQ(e.meta.namespace_, "demo");
  EXPECT_STREQ(e.meta.name, "client");
  EXPECT_STREQ(e.meta.service_account, "client-sa");
  EXPECT_EQ(e.meta.netns_inode, 4026530011u);

  ASSERT_THAT(plan.ipcache, SizeIs(1));
  const shunt_ipcache_entry& ipc = plan.ipcache.at(Ipv4Be("10.0.0.5"));
  EXPECT_EQ(ipc.identity, id);
  EXPECT_EQ(ipc.flags, SHUNT_IPC_F_LOCAL);

  ASSERT_THAT(plan.local_pods, SizeIs(1));
  const LocalPodStatus& st = plan.local_pods[0];
  EXPECT_EQ(st.key, "demo/client");
  EXPECT_EQ(st.uid, "uid-client");
  EXPECT_EQ(st.ip, "10.0.0.5");
  EXPECT_EQ(st.cgroup, "/cg/podclient");
  EXPECT_EQ(st.pid, 111);
  EXPECT_EQ(st.netns_cookie, 11u);
  EXPECT_EQ(st.netns_path, "/proc/111/ns/net");
  EXPECT_THAT(st.host_ifindexes, ElementsAre(21));
  EXPECT_EQ(st.problem, "");
}

// shunt.dev/short-circuit: "off" on a pod, or on its namespace: the pod is
// meshed (policy, telemetry) but its sockets never join the sockhash.
TEST_F(EndpointPlanTest, APodOrNamespaceThatOptedOutIsMeshedWithoutTheShortCircuit) {
  pods_ = {MakePod("demo", "a", "10.0.0.5"), MakePod("demo", "b", "10.0.0.6"),
           MakePod("legacy", "c", "10.0.0.7")};
  pods_[1].short_circuit_off = true;
  namespaces_ = {{.name = "legacy", .short_circuit_off = true}, {.name = "demo"}};
  Sandbox("a", 11, {"10.0.0.5"});
  Sandbox("b", 12, {"10.0.0.6"});
  Sandbox("c", 13, {"10.0.0.7"});
  Plan plan = Make();
  ASSERT_THAT(plan.endpoints, SizeIs(3));
  EXPECT_EQ(plan.endpoints.at(11).ep.flags, SHUNT_EP_F_SHORT_CIRCUIT);
  EXPECT_EQ(plan.endpoints.at(12).ep.flags, 0u);
  EXPECT_EQ(plan.endpoints.at(13).ep.flags, 0u);
  for (const LocalPodStatus& st : plan.local_pods) EXPECT_EQ(st.problem, "") << st.key;
}

TEST_F(EndpointPlanTest, RemotePodsOnlyGetIpcacheEntries) {
  pods_ = {MakePod("demo", "server", "10.0.1.7", "node-b")};
  Sandbox("server", 10, {"10.0.1.7"});  // even with a cgroup here of that uid
  Plan plan = Make();
  EXPECT_THAT(plan.endpoints, IsEmpty());
  EXPECT_THAT(plan.local_pods, IsEmpty());
  ASSERT_THAT(plan.ipcache, SizeIs(1));
  EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.1.7")).identity, kFirstIdentity);
  EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.1.7")).flags, 0u);
}

TEST_F(EndpointPlanTest, UnboundLocalPodsAreReportedAndNotLocalInIpcache) {
  struct Case {
    const char* description;
    std::function<void()> arrange;
    std::string problem;
  };
  const Case cases[] = {
      {"not looked for", [] {}, "its sandbox was not looked for (yet)"},
      {"no cgroup", [&] { Missing("p", "no kubelet cgroup for uid uid-p under /cg (yet)"); },
       "no kubelet cgroup for uid uid-p under /cg (yet)"},
      {"its namespace lacks the IP", [&] { Sandbox("p", 10, {"10.0.0.6"}); },
       "its network namespace (process 110 of /cg/podp) does not hold status.podIP 10.0.0.5"},
      {"in the node's namespace", [&] { Sandbox("p", kPlanCookie, {"10.0.0.5"}); },
       "its sandbox process 101 is in the node's own network namespace"},
      {"no uid", [&] { pods_[0].uid.clear(); },
       "metadata.uid is missing: a local pod is bound to its network namespace through the "
       "kubelet cgroup named after its uid"},
  };
  for (const Case& c : cases) {
    pods_ = {MakePod("demo", "p", "10.0.0.5")};
    sandboxes_.clear();
    c.arrange();
    Plan plan = Make();
    EXPECT_THAT(plan.endpoints, IsEmpty()) << c.description;
    ASSERT_THAT(plan.local_pods, SizeIs(1)) << c.description;
    EXPECT_EQ(plan.local_pods[0].problem, c.problem) << c.description;
    EXPECT_EQ(plan.local_pods[0].netns_cookie, 0u) << c.description;
    EXPECT_EQ(plan.local_pods[0].netns_path, "") << c.description;
    // Still in the ipcache (policy needs its identity), but not as a local peer.
    ASSERT_EQ(plan.ipcache.count(Ipv4Be("10.0.0.5")), 1u) << c.description;
    EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.0.5")).flags, 0u) << c.description;
  }
}

TEST_F(EndpointPlanTest, AnotherPodHoldingTheSameIpChangesNothing) {
  // A hostile pod adds its neighbour's IP to its own interface: the binding
  // follows cgroups, so the victim stays bound to its own namespace and the
  // attacker to its own.
  pods_ = {MakePod("demo", "victim", "10.0.0.5"), MakePod("demo", "attacker", "10.0.0.6")};
  Sandbox("victim", 10, {"10.0.0.5"});
  Sandbox("attacker", 11, {"10.0.0.6", "10.0.0.5"});
  Plan plan = Make();
  ASSERT_THAT(plan.endpoints, SizeIs(2));
  EXPECT_EQ(plan.endpoints.at(10).ep.ip4, Ipv4Be("10.0.0.5"));
  EXPECT_EQ(plan.endpoints.at(11).ep.ip4, Ipv4Be("10.0.0.6"));
  EXPECT_EQ(plan.local_pods[0].problem, "");
  EXPECT_EQ(plan.local_pods[1].problem, "");
}

TEST_F(EndpointPlanTest, ANamespaceBelongsToOnePodOnly) {
  // Two local pods whose cgroups' processes share one namespace: only the
  // first gets it.
  pods_ = {MakePod("demo", "first", "10.0.0.5"), MakePod("demo", "second", "10.0.0.5")};
  Sandbox("first", 10, {"10.0.0.5"});
  Sandbox("second", 10, {"10.0.0.5"});
  Plan plan = Make();
  ASSERT_THAT(plan.endpoints, SizeIs(1));
  EXPECT_STREQ(plan.endpoints.at(10).meta.name, "first");
  ASSERT_THAT(plan.local_pods, SizeIs(2));
  EXPECT_EQ(plan.local_pods[0].problem, "");
  EXPECT_EQ(plan.local_pods[1].problem, "its network namespace already belongs to pod demo/first");
  EXPECT_EQ(plan.local_pods[1].netns_cookie, 0u);
}

TEST_F(EndpointPlanTest, HostNetworkPodsAreSkippedEntirely) {
  model::Pod host = MakePod("kube-system", "proxy", "192.168.1.10", kNode, "proxy-sa");
  host.host_network = true;
  model::Pod remote_host = MakePod("kube-system", "proxy-b", "192.168.1.11", "node-b", "proxy-sa");
  remote_host.host_network = true;
  pods_ = {host, remote_host};
  Sandbox("proxy", 10, {"192.168.1.10"});
  Plan plan = Make();
  EXPECT_THAT(plan.endpoints, IsEmpty());
  EXPECT_THAT(plan.ipcache, IsEmpty());
  EXPECT_THAT(plan.local_pods, IsEmpty());
  EXPECT_EQ(ids_.size(), 0u);
}

TEST_F(EndpointPlanTest, IdentitiesFollowNamespaceAndServiceAccount) {
  pods_ = {
      MakePod("demo", "a1", "10.0.0.1", kNode, "a"),
      MakePod("demo", "a2", "10.0.0.2", "node-b", "a"),
      MakePod("demo", "b1", "10.0.0.3", kNode, "b"),
      MakePod("other", "a3", "10.0.0.4", "node-b", "a"),
  };
  Sandbox("a1", 10, {"10.0.0.1"});
  Sandbox("b1", 11, {"10.0.0.3"});
  Plan plan = Make();
  const uint32_t demo_a = plan.ipcache.at(Ipv4Be("10.0.0.1")).identity;
  EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.0.2")).identity, demo_a);
  EXPECT_NE(plan.ipcache.at(Ipv4Be("10.0.0.3")).identity, demo_a);
  EXPECT_NE(plan.ipcache.at(Ipv4Be("10.0.0.4")).identity, demo_a);
  EXPECT_NE(plan.ipcache.at(Ipv4Be("10.0.0.4")).identity,
            plan.ipcache.at(Ipv4Be("10.0.0.3")).identity);
  // The endpoint and the ipcache agree.
  EXPECT_EQ(plan.endpoints.at(10).ep.identity, demo_a);
  EXPECT_EQ(plan.endpoints.at(11).ep.identity, plan.ipcache.at(Ipv4Be("10.0.0.3")).identity);
  EXPECT_EQ(ids_.size(), 3u);
}

TEST_F(EndpointPlanTest, IdentitiesOfGonePodsAreFreedAndKeptOnesAreStable) {
  pods_ = {MakePod("demo", "a", "10.0.0.1", kNode, "a"),
           MakePod("demo", "b", "10.0.0.2", kNode, "b")};
  Plan plan = Make();
  const uint32_t id_a = plan.ipcache.at(Ipv4Be("10.0.0.1")).identity;
  const uint32_t id_b = plan.ipcache.at(Ipv4Be("10.0.0.2")).identity;
  ASSERT_EQ(id_a, kFirstIdentity);
  ASSERT_EQ(id_b, kFirstIdentity + 1);

  pods_ = {MakePod("demo", "b", "10.0.0.2", kNode, "b")};
  plan = Make();
  EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.0.2")).identity, id_b);
  EXPECT_EQ(ids_.size(), 1u);
  EXPECT_EQ(ids_.all().count({"demo", "a"}), 0u);

  // Service account "c" takes the freed lowest number.
  pods_.push_back(MakePod("demo", "c", "10.0.0.3", "node-b", "c"));
  plan = Make();
  EXPECT_EQ(plan.ipcache.at(Ipv4Be("10.0.0.3")).identity, id_a);
}

TEST_F(EndpointPlanTest, LocalPodStatusesAreInConfigOrder) {
  pods_ = {MakePod("demo", "z", "10.0.0.3"), MakePod("demo", "remote", "10.0.0.9", "node-b"),
           MakePod("demo", "a", "10.0.0.1"), MakePod("demo", "m", "10.0.0.2")};
  Sandbox("a", 10, {"10.0.0.1"});
  Plan plan = Make();
  std::vector<std::string> keys;
  for (const LocalPodStatus& st : plan.local_pods) keys.push_back(st.key);
  EXPECT_THAT(keys, ElementsAre("demo/z", "demo/a", "demo/m"));
  EXPECT_THAT(plan.endpoints, SizeIs(1));
  EXPECT_THAT(plan.ipcache, SizeIs(4));
}

TEST_F(EndpointPlanTest, LongNamesAreTruncatedAndTerminatedInMeta) {
  // Kubernetes allows 253-character service account names; the ABI keeps 63.
  const std::string sa(200, 's');
  const std::string name(253, 'p');
  pods_ = {MakePod("demo", name, "10.0.0.1", kNode, sa)};
  Sandbox(name, 10, {"10.0.0.1"});
  Plan plan = Make();
  const EndpointEntry& e = plan.endpoints.at(10);
  EXPECT_EQ(std::string(e.meta.service_account), std::string(SHUNT_NAME_LEN - 1, 's'));
  EXPECT_EQ(std::string(e.meta.name), name);  // fits in SHUNT_POD_NAME_LEN
  EXPECT_EQ(e.meta.name[SHUNT_POD_NAME_LEN - 1], '\0');
}

TEST_F(EndpointPlanTest, ADualStackPodsIpv6AddressHasItsIdentity) {
  model::Pod local = MakePod("demo", "web", "10.0.0.1");
  local.ip6 = "fd00::1";
  inet_pton(AF_INET6, "fd00::1", local.ip6_bytes.data());
  model::Pod remote = MakePod("demo", "db", "10.0.1.1", "node-b", "db");
  remote.ip6 = "fd00:1::1";
  inet_pton(AF_INET6, "fd00:1::1", remote.ip6_bytes.data());
  pods_ = {local, remote, MakePod("demo", "v4only", "10.0.0.2")};
  Sandbox("web", 11, {"10.0.0.1"});
  Sandbox("v4only", 12, {"10.0.0.2"});
  Plan plan = Make();
  ASSERT_THAT(plan.ipcache6, SizeIs(2));
  const shunt_ipcache_entry& web = plan.ipcache6.at(local.ip6_bytes);
  EXPECT_EQ(web.identity, plan.ipcache.at(Ipv4Be("10.0.0.1")).identity);
  EXPECT_EQ(web.flags, SHUNT_IPC_F_LOCAL);
  const shunt_ipcache_entry& db = plan.ipcache6.at(remote.ip6_bytes);
  EXPECT_EQ(db.identity, plan.ipcache.at(Ipv4Be("10.0.1.1")).identity);
  EXPECT_EQ(db.flags, 0u);
  // The local pod's endpoint knows its IPv6 address (connect6 and the
  // guards compare against it); a single-stack pod's is all zero.
  EXPECT_EQ(std::memcmp(&plan.endpoints.at(11).ep.ip6, local.ip6_bytes.data(), 16), 0);
  EXPECT_EQ(plan.endpoints.at(12).ep.ip6.w[0] | plan.endpoints.at(12).ep.ip6.w[3], 0u);
  EXPECT_EQ(plan.local_pods[0].ip6, "fd00::1");
}

// One namespace's pods take at most their share of the ipcache; this
// node's pods are counted first, so a manifest full of remote pods cannot
// push them out, and other namespaces keep theirs.
TEST_F(EndpointPlanTest, ANamespacesPodsTakeOnlyTheirShareOfTheIpcache) {
  pods_ = {MakePod("flood", "r1", "10.0.1.1", "node-b"),
           MakePod("flood", "r2", "10.0.1.2", "node-b"), MakePod("flood", "local", "10.0.0.1"),
           MakePod("flood", "r3", "10.0.1.3", "node-b"),
           MakePod("calm", "c1", "10.0.2.1", "node-b")};
  Sandbox("local", 11, {"10.0.0.1"});
  Plan plan = MakePlan({.node = kNode,
                        .pods = &pods_,
                        .sandboxes = &sandboxes_,
                        .own_netns_cookie = kPlanCookie,
                        .ipcache_per_namespace = 2},
                       ids_);
  EXPECT_EQ(plan.ipcache.count(Ipv4Be("10.0.0.1")), 1u) << "the local pod lost its entry";
  EXPECT_EQ(plan.ipcache.count(Ipv4Be("10.0.1.1")), 1u);
  EXPECT_EQ(plan.ipcache.count(Ipv4Be("10.0.1.2")), 0u);
  EXPECT_EQ(plan.ipcache.count(Ipv4Be("10.0.1.3")), 0u);
  EXPECT_EQ(plan.ipcache.count(Ipv4Be("10.0.2.1")), 1u) << "another namespace paid";
  EXPECT_THAT(plan.over_share,
              ElementsAre("pod flood/r2: not in the ipcache: namespace flood has used its share "
                          "of 2 addresses (--ipcache-entries-per-namespace)",
                          "pod flood/r3: not in the ipcache: namespace flood has used its share "
                          "of 2 addresses (--ipcache-entries-per-namespace)"));
  // A local pod over the share is reported, not meshed.
  Plan tight = MakePlan({.node = kNode,
                         .pods = &pods_,
                         .sandboxes = &sandboxes_,
                         .own_netns_cookie = kPlanCookie,
                         .ipcache_per_namespace = 1},
                        ids_);
  EXPECT_EQ(tight.ipcache.count(Ipv4Be("10.0.0.1")), 1u);
  pods_.push_back(MakePod("flood", "local2", "10.0.0.2"));
  Sandbox("local2", 12, {"10.0.0.2"});
  tight = MakePlan({.node = kNode,
                    .pods = &pods_,
                    .sandboxes = &sandboxes_,
                    .own_netns_cookie = kPlanCookie,
                    .ipcache_per_namespace = 1},
                   ids_);
  ASSERT_EQ(tight.local_pods.size(), 2u);
  EXPECT_EQ(tight.local_pods[1].problem,
            "namespace flood has used its share of 1 ipcache addresses "
            "(--ipcache-entries-per-namespace)");
  EXPECT_EQ(tight.endpoints.count(12), 0u);
}

}  // namespace
}  // namespace shunt::endpoints
