#include "endpoint_plan.h"

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
  // IP -> namespaces holding it.
  std::map<uint32_t, std::vector<const netns::NetnsProbe*>> holders;
  for (const netns::NetnsProbe& p : *in.namespaces) {
    if (p.cookie == in.own_netns_cookie) continue;
    // An address may sit on several interfaces of one namespace: count it once.
    for (uint32_t ip : std::set<uint32_t>(p.ipv4_be.begin(), p.ipv4_be.end()))
      holders[ip].push_back(&p);
  }
  std::set<uint64_t> claimed;

  for (const model::Pod& pod : *in.pods) {
    if (pod.host_network) continue;  // shares the node's namespace: not a mesh endpoint
    IdentityAllocator::Key key{pod.namespace_, pod.service_account};
    const uint32_t identity = ids.Get(key);
    plan.identities.insert(key);
    shunt_ipcache_entry ipc{.identity = identity, .flags = 0};

    if (pod.node_name == in.node) {
      LocalPodStatus st{.key = pod.Key(), .ip = pod.ip};
      auto h = holders.find(pod.ip_be);
      if (h == holders.end()) {
        st.problem = absl::StrCat("no network namespace holds ", pod.ip, " (yet)");
      } else if (h->second.size() > 1) {
        st.problem = absl::StrCat(h->second.size(), " network namespaces hold ", pod.ip,
                                  "; refusing to guess which is the pod's");
      } else if (!claimed.insert(h->second[0]->cookie).second) {
        st.problem =
            absl::StrCat("its namespace ", h->second[0]->path, " already belongs to another pod");
      } else {
        const netns::NetnsProbe& ns = *h->second[0];
        st.netns_cookie = ns.cookie;
        st.netns_path = ns.path;
        if (auto peer = ns.veth_peer_ifindex.find(pod.ip_be); peer != ns.veth_peer_ifindex.end())
          st.host_ifindex = peer->second;
        EndpointEntry e;
        e.ep.ip4 = pod.ip_be;
        e.ep.identity = identity;
        e.ep.flags = SHUNT_EP_F_SHORT_CIRCUIT;
        CopyName(e.meta.namespace_, sizeof(e.meta.namespace_), pod.namespace_);
        CopyName(e.meta.name, sizeof(e.meta.name), pod.name);
        CopyName(e.meta.service_account, sizeof(e.meta.service_account), pod.service_account);
        e.meta.netns_inode = ns.inode;
        plan.endpoints[ns.cookie] = e;
        // Only a pod whose sockets will enter the sockhash counts as a local
        // peer; otherwise its clients would run sk_msg only to miss.
        ipc.flags |= SHUNT_IPC_F_LOCAL;
      }
      plan.local_pods.push_back(std::move(st));
    }
    plan.ipcache[pod.ip_be] = ipc;
  }
  return plan;
}

}  // namespace shunt::endpoints
