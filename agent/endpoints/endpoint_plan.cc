#include "endpoint_plan.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"

namespace shunt::endpoints {
namespace {

void CopyName(char* dst, size_t cap, const std::string& src) {
  std::memset(dst, 0, cap);
  std::memcpy(dst, src.data(), std::min(src.size(), cap - 1));
}

}  // namespace

Plan MakePlan(const PlanInput& in, IdentityAllocator& ids) {
  Plan plan;
  std::map<uint64_t, std::string> claimed;  // netns cookie -> pod

  // One namespace's pods may take only their share of the ipcache, this
  // node's first: a hostile manifest listing thousands of pods cannot
  // crowd out other namespaces' addresses (or this node's own pods).
  std::set<const model::Pod*> over_share;
  std::map<std::string, uint64_t> used;  // namespace -> addresses
  for (bool local : {true, false}) {
    for (const model::Pod& pod : *in.pods) {
      if (pod.host_network || (pod.node_name == in.node) != local) continue;
      const uint64_t need = pod.ip6.empty() ? 1 : 2;
      uint64_t& n = used[pod.namespace_];
      if (n + need > in.ipcache_per_namespace) {
        over_share.insert(&pod);
        if (!local)
          plan.over_share.push_back(
              absl::StrCat("pod ", pod.Key(), ": not in the ipcache: namespace ", pod.namespace_,
                           " has used its share of ", in.ipcache_per_namespace,
                           " addresses (--ipcache-entries-per-namespace)"));
        continue;
      }
      n += need;
    }
  }

  std::set<std::string> opted_out;
  if (in.namespaces)
    for (const model::Namespace& ns : *in.namespaces)
      if (ns.short_circuit_off) opted_out.insert(ns.name);
  for (const model::Pod& pod : *in.pods) {
    if (pod.host_network) continue;  // shares the node's namespace: not a mesh endpoint
    if (over_share.count(&pod) && pod.node_name != in.node) continue;
    IdentityAllocator::Key key{pod.namespace_, pod.service_account};
    const uint32_t identity = ids.Get(key);
    plan.identities.insert(key);
    shunt_ipcache_entry ipc{.identity = identity, .flags = 0};

    if (pod.node_name == in.node) {
      LocalPodStatus st{.key = pod.Key(),
                        .uid = pod.uid,
                        .ip = pod.ip,
                        .ip_be = pod.ip_be,
                        .ip6 = pod.ip6,
                        .ip6_bytes = pod.ip6_bytes};
      const auto sb = in.sandboxes->find(pod.uid);
      if (over_share.count(&pod)) {
        st.problem = absl::StrCat("namespace ", pod.namespace_, " has used its share of ",
                                  in.ipcache_per_namespace,
                                  " ipcache addresses (--ipcache-entries-per-namespace)");
        plan.local_pods.push_back(std::move(st));
        continue;
      } else if (pod.uid.empty()) {
        st.problem =
            "metadata.uid is missing: a local pod is bound to its network namespace through the "
            "kubelet cgroup named after its uid";
      } else if (sb == in.sandboxes->end()) {
        st.problem = "its sandbox was not looked for (yet)";
      } else if (!sb->second.problem.empty()) {
        st.problem = sb->second.problem;
      } else {
        const netns::PodSandbox& box = sb->second;
        st.cgroup = box.cgroup;
        st.pid = box.pid;
        // The sandbox's links are the pod's whatever else is wrong: its
        // guard must not depend on what the pod does inside.
        st.host_ifindexes = box.host_ifindexes;
        const std::vector<uint32_t>& held = box.netns.ipv4_be;
        if (box.netns.cookie == in.own_netns_cookie) {
          st.problem = absl::StrCat("its sandbox process ", box.pid,
                                    " is in the node's own network namespace");
        } else if (std::find(held.begin(), held.end(), pod.ip_be) == held.end()) {
          st.problem = absl::StrCat("its network namespace (process ", box.pid, " of ", box.cgroup,
                                    ") does not hold status.podIP ", pod.ip);
        } else if (auto [other, fresh] = claimed.emplace(box.netns.cookie, pod.Key()); !fresh) {
          st.problem = absl::StrCat("its network namespace already belongs to pod ", other->second);
        } else {
          st.netns_cookie = box.netns.cookie;
          st.netns_path = box.netns.path;
          EndpointEntry e;
          e.ep.ip4 = pod.ip_be;
          std::memcpy(&e.ep.ip6, pod.ip6_bytes.data(), sizeof(e.ep.ip6));
          e.ep.identity = identity;
          // The short-circuit, unless the pod or its namespace opted out.
          e.ep.flags = pod.short_circuit_off || opted_out.count(pod.namespace_)
                           ? 0
                           : SHUNT_EP_F_SHORT_CIRCUIT;
          CopyName(e.meta.namespace_, sizeof(e.meta.namespace_), pod.namespace_);
          CopyName(e.meta.name, sizeof(e.meta.name), pod.name);
          CopyName(e.meta.service_account, sizeof(e.meta.service_account), pod.service_account);
          e.meta.netns_inode = box.netns.inode;
          plan.endpoints[box.netns.cookie] = e;
          // Only a pod whose sockets will enter the sockhash counts as a local
          // peer; otherwise its clients would run sk_msg only to miss.
          ipc.flags |= SHUNT_IPC_F_LOCAL;
        }
      }
      plan.local_pods.push_back(std::move(st));
    }
    plan.ipcache[pod.ip_be] = ipc;
    if (!pod.ip6.empty()) plan.ipcache6[pod.ip6_bytes] = ipc;
  }
  return plan;
}

}  // namespace shunt::endpoints
