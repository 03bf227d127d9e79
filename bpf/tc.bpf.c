// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Packet-level guards on the node side of each local pod's veth:
 *  - from the pod (ingress here): a packet whose IPv4 source is not the pod's
 *    own address is dropped (anti-spoofing); a new TCP connection (SYN) or a
 *    UDP datagram to a meshed pod is judged by SMI policy, so a raw or
 *    AF_PACKET socket, NAT inside the pod, or anything else that skips the
 *    socket hooks meets the same verdict as connect()/sendto();
 *  - to the pod (egress here): the same for senders on other nodes, the
 *    source identity looked up by its address. Local senders were judged
 *    leaving their own pod;
 *  - IPv6 the same way, between the pods' IPv6 addresses
 *    (lib/tc_ipv6.bpf.h);
 *  - UDP: a datagram policy allows opens the way back for its replies
 *    (lib/udp_exchange.bpf.h), so request/response works in enforce mode;
 *  - both ways, on TCP connections that are not short-circuited: the
 *    request/response timing of the connection's flow record (data
 *    segments only; a packet between two local pods is timed once, leaving
 *    the sender's pod).
 * Returning -1 lets the next program or the default action decide (TCX_NEXT,
 * TC_ACT_UNSPEC), so the hooks coexist with a CNI's. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "lib/counters.bpf.h"
#include "lib/policy.bpf.h"
#include "lib/tc_maps.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/udp_exchange.bpf.h"
#include "lib/mtls_guard.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SHUNT_TC_NEXT -1
#define SHUNT_TC_DROP 2
#define SHUNT_ETH_P_IP 0x0800
#define SHUNT_ETH_HLEN 14
#define SHUNT_IP_MF 0x2000
#define SHUNT_IP_OFFSET 0x1fff
#define SHUNT_TCP_SYN 0x02
#define SHUNT_TCP_ACK 0x10

/* New UDP exchanges one local pod may open per idle period (the agent's
 * --udp-exchanges-per-pod). */
volatile const __u32 udp_exchange_budget = 2048;

/* The ports and, for TCP, the flags of a packet's first fragment. */
struct l4_info {
	__be16 sport;
	__be16 dport;
	bool new_flow; /* a TCP SYN without ACK, or any UDP datagram */
};

/* Reads the transport header of an unfragmented packet or a first fragment.
 * False when it is not there, or when a first fragment is too short to
 * hold a whole minimal TCP (20 bytes) or UDP (8) header: the tiny-fragment
 * attack (RFC 1858) puts the flags or ports in a later fragment. */
static __always_inline bool l4_of(struct __sk_buff *skb, struct iphdr *ip, struct l4_info *out)
{
	__u8 l4[14];
	__u32 len = ip->protocol == SHUNT_IPPROTO_TCP ? 14 : 4;
	__u32 payload = bpf_ntohs(ip->tot_len) - ip->ihl * 4;

	if ((ip->frag_off & bpf_htons(SHUNT_IP_MF)) &&
	    payload < (ip->protocol == SHUNT_IPPROTO_TCP ? 20u : 8u))
		return false;
	if (bpf_skb_load_bytes(skb, SHUNT_ETH_HLEN + ip->ihl * 4, l4, len))
		return false;
	__builtin_memcpy(&out->sport, &l4[0], sizeof(out->sport));
	__builtin_memcpy(&out->dport, &l4[2], sizeof(out->dport));
	out->new_flow = ip->protocol != SHUNT_IPPROTO_TCP ||
			((l4[13] & SHUNT_TCP_SYN) && !(l4[13] & SHUNT_TCP_ACK));
	return true;
}

/* The IPv4 header of an Ethernet frame, bounds-checked, or NULL. */
static __always_inline struct iphdr *ipv4_header(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(SHUNT_ETH_P_IP))
		return NULL;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->ihl < 5)
		return NULL;
	return ip;
}

/* The event type of a denied new flow from `src_identity`. */
static __always_inline __u8 denial_type(__u32 src_identity, __u8 verdict)
{
	if (src_identity == SHUNT_IDENTITY_UNKNOWN_POD)
		return SHUNT_EVENT_UNKNOWN_POD;
	return verdict == SHUNT_VERDICT_L7 ? SHUNT_EVENT_POLICY_DENY_L7 : SHUNT_EVENT_POLICY_DENY;
}

/* True when the packet entered the node through the guarded veth of the
 * local pod whose address is `ip4` (or, for IPv6, `ip6`). */
static __always_inline bool came_from_its_pod(struct __sk_buff *skb, __be32 ip4,
					      const struct shunt_ip6 *ip6)
{
	__u32 in = skb->ingress_ifindex;
	struct shunt_tc_endpoint *src = bpf_map_lookup_elem(&shunt_tc_eps_v2, &in);

	if (!src)
		return false;
	if (ip6)
		return ip6_equal(&src->ip6, ip6);
	return src->ip4 == ip4;
}

/* True when the frame, after the kernel removed the first VLAN tag (into
 * skb metadata), still starts with an 802.1Q or 802.1ad tag. */
static __always_inline bool still_vlan_tagged(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return false;
	return eth->h_proto == bpf_htons(0x8100) || eth->h_proto == bpf_htons(0x88A8);
}

/* Times a TCP data segment against its flow's request/response state. */
static __always_inline void flow_segment(struct __sk_buff *skb, struct iphdr *ip)
{
	__u8 tcp[14];
	__be16 sport, dport;
	__u32 hdr_len, total;
	struct shunt_flow *f;
	bool client_end;

	if (ip->protocol != SHUNT_IPPROTO_TCP || (ip->frag_off & bpf_htons(SHUNT_IP_OFFSET)))
		return;
	if (bpf_skb_load_bytes(skb, SHUNT_ETH_HLEN + ip->ihl * 4, tcp, sizeof(tcp)))
		return;
	hdr_len = ip->ihl * 4 + (tcp[12] >> 4) * 4;
	total = bpf_ntohs(ip->tot_len);
	if (total <= hdr_len)
		return; /* no payload: handshake, pure ACK, bare FIN */
	if (!telemetry_on())
		return;
	__builtin_memcpy(&sport, &tcp[0], sizeof(sport));
	__builtin_memcpy(&dport, &tcp[2], sizeof(dport));
	/* Seen from the sender: it is the flow's client end or its server end. */
	f = flow_lookup(ip->saddr, ip->daddr, sport, dport, &client_end);
	if (!f || (f->flags & SHUNT_FLOW_F_SHORT_CIRCUIT))
		return; /* untracked, or timed by sk_msg */
	flow_data(f, client_end, bpf_ktime_get_ns());
}

/* Sends the agent a denial of this packet: its addresses, its ports when
 * they were read (l4 may be NULL), and who it was between. */
static __always_inline void report(struct iphdr *ip, const struct l4_info *l4, __u32 src_identity,
				   __u32 dst_identity, __u8 type, __u8 hook, __u8 enforced)
{
	struct shunt_deny_event ev = {
		.src_identity = src_identity,
		.dst_identity = dst_identity,
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.sport = l4 ? l4->sport : 0,
		.dport = l4 ? l4->dport : 0,
		.proto = ip->protocol,
		.type = type,
		.hook = hook,
		.enforced = enforced,
	};

	emit_denial(&ev);
}

static __always_inline bool later_fragment(struct iphdr *ip)
{
	return ip->frag_off & bpf_htons(SHUNT_IP_OFFSET);
}

/* A packet between meshed pods that cannot be judged (see
 * SHUNT_EVENT_FRAGMENT_DROP): dropped in enforce mode, counted in
 * permissive mode. */
static __always_inline int unjudgeable(struct iphdr *ip, __u32 src_identity, __u32 dst_identity,
				       __u8 hook)
{
	if (!policy_enforced()) {
		counter_add(SHUNT_CTR_FRAGMENT_WOULD_DROP, 1);
		return SHUNT_TC_NEXT;
	}
	report(ip, NULL, src_identity, dst_identity, SHUNT_EVENT_FRAGMENT_DROP, hook, 1);
	counter_add(SHUNT_CTR_FRAGMENT_DROPPED, 1);
	return SHUNT_TC_DROP;
}

static __always_inline struct shunt_fragment_key fragment_key(struct iphdr *ip)
{
	struct shunt_fragment_key k = {
		.saddr = ip->saddr, .daddr = ip->daddr, .id = ip->id, .proto = ip->protocol,
	};
	return k;
}

/* The packet passed; if it is a first fragment, its later ones may follow. */
static __always_inline int passed(struct iphdr *ip)
{
	struct shunt_fragment_key k;
	__u64 now;

	if (!(ip->frag_off & bpf_htons(SHUNT_IP_MF)))
		return SHUNT_TC_NEXT;
	k = fragment_key(ip);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&shunt_fragments_v1, &k, &now, BPF_ANY);
	return SHUNT_TC_NEXT;
}

/* A later fragment follows its first one, or is unjudgeable. */
static __always_inline int later_fragment_verdict(struct iphdr *ip, __u32 src_identity,
						  __u32 dst_identity, __u8 hook)
{
	struct shunt_fragment_key k = fragment_key(ip);
	__u64 *first = bpf_map_lookup_elem(&shunt_fragments_v1, &k);

	if (first && bpf_ktime_get_ns() - *first < SHUNT_FRAGMENT_TTL_NS)
		return SHUNT_TC_NEXT;
	return unjudgeable(ip, src_identity, dst_identity, hook);
}

#define SHUNT_IPPROTO_ICMP 1
#define SHUNT_ICMP_ECHO_REPLY 0
#define SHUNT_ICMP_DEST_UNREACH 3
#define SHUNT_ICMP_ECHO 8
#define SHUNT_ICMP_TIME_EXCEEDED 11
#define SHUNT_ICMP_PARAMETERPROB 12

static __always_inline bool icmp_echo_allowed(void)
{
	__u32 zero = 0;
	struct shunt_config *cfg = bpf_map_lookup_elem(&shunt_config_v1, &zero);

	return cfg && (cfg->flags & SHUNT_CONFIG_F_ICMP_ECHO);
}

/* True when an ICMP error from `sender` to `recipient` (both meshed pods)
 * is about a packet the recipient sent to the sender in a flow policy
 * allows, one way or the other (port unreachable, fragmentation needed):
 * path MTU discovery and fast failure keep working, and a pod cannot use
 * ICMP errors to reach anything policy does not already open between the
 * two. */
static __always_inline bool icmp_error_of_allowed_flow(struct __sk_buff *skb, struct iphdr *ip,
						       __u32 sender, __u32 recipient)
{
	struct iphdr inner;
	__u8 ports[4];
	__be16 sport, dport;
	__u32 off = SHUNT_ETH_HLEN + ip->ihl * 4 + 8, rule_id = 0;

	if (bpf_skb_load_bytes(skb, off, &inner, sizeof(inner)) || inner.ihl < 5)
		return false;
	if (inner.saddr != ip->daddr || inner.daddr != ip->saddr)
		return false;
	if (inner.protocol != SHUNT_IPPROTO_TCP && inner.protocol != SHUNT_IPPROTO_UDP)
		return false;
	if (bpf_skb_load_bytes(skb, off + inner.ihl * 4, ports, sizeof(ports)))
		return false;
	__builtin_memcpy(&sport, &ports[0], sizeof(sport));
	__builtin_memcpy(&dport, &ports[2], sizeof(dport));
	if (policy_verdict(recipient, sender, dport, inner.protocol, &rule_id) == SHUNT_VERDICT_ALLOW ||
	    policy_verdict(sender, recipient, sport, inner.protocol, &rule_id) == SHUNT_VERDICT_ALLOW)
		return true;
	/* An error about a UDP reply the recipient sent to the sender. */
	return inner.protocol == SHUNT_IPPROTO_UDP && udp_is_reply(inner.saddr, sport, inner.daddr, dport);
}

/* A packet between meshed pods of a protocol SMI cannot express. Denied,
 * except ICMP errors of an allowed flow and, behind a flag, ICMP echo. */
static __always_inline int judge_other_protocol(struct __sk_buff *skb, struct iphdr *ip,
						__u32 src_identity, __u32 dst_identity, __u8 hook)
{
	__u8 icmp[2], enforced;

	if (later_fragment(ip))
		return later_fragment_verdict(ip, src_identity, dst_identity, hook);
	if (ip->protocol == SHUNT_IPPROTO_ICMP &&
	    !bpf_skb_load_bytes(skb, SHUNT_ETH_HLEN + ip->ihl * 4, icmp, sizeof(icmp))) {
		if ((icmp[0] == SHUNT_ICMP_ECHO || icmp[0] == SHUNT_ICMP_ECHO_REPLY) &&
		    icmp_echo_allowed())
			return passed(ip);
		if ((icmp[0] == SHUNT_ICMP_DEST_UNREACH || icmp[0] == SHUNT_ICMP_TIME_EXCEEDED ||
		     icmp[0] == SHUNT_ICMP_PARAMETERPROB) &&
		    icmp_error_of_allowed_flow(skb, ip, src_identity, dst_identity)) {
			counter_add(SHUNT_CTR_ICMP_ERROR_ALLOWED, 1);
			return passed(ip);
		}
	}
	enforced = policy_enforced();
	/* Reported in both modes: no socket hook saw these. */
	report(ip, NULL, src_identity, dst_identity, SHUNT_EVENT_PROTOCOL_DENY, hook, enforced);
	if (!enforced) {
		counter_add(SHUNT_CTR_PROTO_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	counter_add(SHUNT_CTR_PROTO_DENIED, 1);
	return SHUNT_TC_DROP;
}

/* A new flow from a local pod to a meshed pod: the verdict its socket
 * already met at connect()/sendto(), met again by the packet, whatever
 * sent it. Replies of UDP exchanges pass. */
/* With mTLS, the node's proxy connects to a local pod from the remote client
 * pod's own address (IP_TRANSPARENT, docs/mtls.md): the pod's replies are
 * addressed to a pod on another node. One that belongs to a proxy socket
 * (found by its 4-tuple, marked by the proxy) gets the proxy's mark, and the
 * agent's fwmark rule delivers it locally instead of forwarding it. Only
 * TCP to a pod's address, only with mTLS on; to a local pod's address only
 * with the L7 layer on, whose connections to local pods come from local
 * clients' addresses (docs/l7.md): a socket lookup per such packet, paid
 * only by connections not short-circuited. */
static __always_inline void mtls_mark_proxy_reply(struct __sk_buff *skb, struct iphdr *ip)
{
	struct bpf_sock_tuple t = {};
	struct shunt_ipcache_entry *peer;
	struct bpf_sock *sk;
	struct l4_info l4;

	if (mtls_mode() == SHUNT_MTLS_OFF && !mtls_l7_on())
		return;
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &ip->daddr);
	if (!peer ||
	    ((peer->flags & SHUNT_IPC_F_LOCAL) ? !mtls_l7_on() : mtls_mode() == SHUNT_MTLS_OFF) ||
	    !l4_of(skb, ip, &l4))
		return;
	t.ipv4.saddr = ip->saddr;
	t.ipv4.daddr = ip->daddr;
	t.ipv4.sport = l4.sport;
	t.ipv4.dport = l4.dport;
	sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv4), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return;
	if (sk->mark == SHUNT_MTLS_PROXY_MARK)
		skb->mark = SHUNT_MTLS_REPLY_MARK;
	bpf_sk_release(sk);
}

static __always_inline int judge_local_source(struct __sk_buff *skb, struct shunt_tc_endpoint *ep,
					      struct iphdr *ip)
{
	struct shunt_ipcache_entry *peer;
	struct l4_info l4;
	__u32 rule_id = 0;
	__be32 daddr = ip->daddr;
	__u8 proto = ip->protocol, verdict;

	if (daddr == ep->ip4)
		return SHUNT_TC_NEXT;
	if (proto == SHUNT_IPPROTO_TCP && !(ip->frag_off & bpf_htons(SHUNT_IP_MF | SHUNT_IP_OFFSET)))
		mtls_mark_proxy_reply(skb, ip);
	/* Most packets are segments of established TCP connections, which are
	 * judged by their SYN only: an unfragmented one without SYN needs no
	 * map lookup at all. */
	if (proto == SHUNT_IPPROTO_TCP &&
	    !(ip->frag_off & bpf_htons(SHUNT_IP_MF | SHUNT_IP_OFFSET)) && l4_of(skb, ip, &l4) &&
	    !l4.new_flow)
		return SHUNT_TC_NEXT;
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &daddr);
	if (!peer) {
		/* Not a meshed destination. One in --pod-cidrs is a pod not known
		 * yet, whose own datagrams are judged at our guards: its replies
		 * to this one must pass. */
		if (proto == SHUNT_IPPROTO_UDP && !later_fragment(ip) && in_pod_cidrs4(daddr) &&
		    l4_of(skb, ip, &l4))
			udp_exchange_open(ip->saddr, l4.sport, daddr, l4.dport, ep->ip4,
					  udp_exchange_budget);
		return SHUNT_TC_NEXT;
	}
	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP)
		return judge_other_protocol(skb, ip, ep->identity, peer->identity,
					    SHUNT_HOOK_TC_FROM_POD);
	if (later_fragment(ip))
		return later_fragment_verdict(ip, ep->identity, peer->identity,
					      SHUNT_HOOK_TC_FROM_POD);
	if (!l4_of(skb, ip, &l4))
		return unjudgeable(ip, ep->identity, peer->identity, SHUNT_HOOK_TC_FROM_POD);
	if (!l4.new_flow)
		return passed(ip);
	verdict = policy_verdict(ep->identity, peer->identity, l4.dport, proto, &rule_id);
	if (verdict == SHUNT_VERDICT_ALLOW) {
		if (proto == SHUNT_IPPROTO_UDP)
			udp_exchange_open(ip->saddr, l4.sport, daddr, l4.dport, ep->ip4,
					  udp_exchange_budget);
		return passed(ip);
	}
	if (proto == SHUNT_IPPROTO_UDP && udp_is_reply(ip->saddr, l4.sport, daddr, l4.dport))
		return passed(ip);
	if (!policy_enforced()) {
		/* The socket hooks already reported what a socket sent; only
		 * counted here, so one would-be denial is not reported twice. */
		counter_add(SHUNT_CTR_TC_LOCAL_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	report(ip, &l4, ep->identity, peer->identity,
	       verdict == SHUNT_VERDICT_L7 ? SHUNT_EVENT_POLICY_DENY_L7 : SHUNT_EVENT_POLICY_DENY,
	       SHUNT_HOOK_TC_FROM_POD, 1);
	counter_add(SHUNT_CTR_TC_LOCAL_DENIED, 1);
	return SHUNT_TC_DROP;
}

/* The IPv6 half, on the definitions above. */
#include "lib/tc_ipv6.bpf.h"

SEC("tc")
int shunt_tc_from_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct shunt_tc_endpoint *ep = bpf_map_lookup_elem(&shunt_tc_eps_v2, &ifindex);
	struct iphdr *ip;

	if (!ep)
		return SHUNT_TC_NEXT;
	if (still_vlan_tagged(skb)) {
		/* The kernel took one tag off before us and, for VLAN 0, takes
		 * the next off after us and delivers what is inside: a pod
		 * (which has no VLANs) would pass every check with two tags. */
		counter_add(SHUNT_CTR_FRAME_UNPARSED_DROPPED, 1);
		return SHUNT_TC_DROP;
	}
	ip = ipv4_header(skb);
	if (!ip)
		return from_pod6(skb, ep); /* IPv6; anything else (ARP) passes */
	if (ip->saddr == ep->ip4) {
		flow_segment(skb, ip);
		return judge_local_source(skb, ep, ip);
	}

	report(ip, NULL, ep->identity, 0, SHUNT_EVENT_SPOOF_DROP, SHUNT_HOOK_TC, 1);
	counter_add(SHUNT_CTR_SPOOF_DROPPED, 1);
	return SHUNT_TC_DROP;
}

SEC("tc")
int shunt_tc_to_pod(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	struct shunt_tc_endpoint *ep = bpf_map_lookup_elem(&shunt_tc_eps_v2, &ifindex);
	const struct shunt_ipcache_entry *peer;
	struct iphdr *ip;
	struct l4_info l4;
	__u32 rule_id = 0;
	__be32 saddr, daddr;
	__u8 proto, verdict, enforced;
	__u32 src_identity;
	bool local;

	if (!ep)
		return SHUNT_TC_NEXT;
	ip = ipv4_header(skb);
	if (!ip)
		return to_pod6(skb, ep);
	proto = ip->protocol;
	saddr = ip->saddr;
	daddr = ip->daddr;
	if (daddr != ep->ip4)
		return SHUNT_TC_NEXT;
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &saddr);
	if (!peer || !(peer->flags & SHUNT_IPC_F_LOCAL))
		flow_segment(skb, ip); /* a local sender's segments were timed leaving its pod */
	if (peer) {
		src_identity = peer->identity;
		local = peer->flags & SHUNT_IPC_F_LOCAL;
	} else if (in_pod_cidrs4(saddr)) {
		/* A pod the agent has not learned yet: judged as one with no
		 * grants. */
		src_identity = SHUNT_IDENTITY_UNKNOWN_POD;
		local = false;
	} else {
		return SHUNT_TC_NEXT; /* not a meshed pod */
	}
	/* The node proxy's L7 layer connects to a local pod from a local
	 * client pod's address (docs/l7.md): its socket's mark says so, and no
	 * pod can set it (marks are scrubbed crossing into the node). */
	const bool from_proxy = skb->mark == SHUNT_MTLS_PROXY_MARK;

	if (local && !from_proxy && !came_from_its_pod(skb, saddr, NULL)) {
		/* A local pod's address from anywhere but its own veth (another
		 * node, the node itself) is spoofed. */
		report(ip, NULL, src_identity, ep->identity, SHUNT_EVENT_SPOOF_DROP, SHUNT_HOOK_TC, 1);
		counter_add(SHUNT_CTR_SPOOF_DROPPED, 1);
		return SHUNT_TC_DROP;
	}
	/* A local pod's new flows were judged leaving its pod, but against
	 * the destination they had there: NAT on the node (kube-proxy's
	 * ClusterIPs, NodePorts, hostPorts) may have sent them here instead,
	 * so they are judged again against this pod. */
	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP) {
		if (local)
			return SHUNT_TC_NEXT; /* judged leaving its pod (no NAT for these) */
		return judge_other_protocol(skb, ip, src_identity, ep->identity, SHUNT_HOOK_TC);
	}
	if (later_fragment(ip))
		return later_fragment_verdict(ip, src_identity, ep->identity, SHUNT_HOOK_TC);
	if (!l4_of(skb, ip, &l4))
		return unjudgeable(ip, src_identity, ep->identity, SHUNT_HOOK_TC);
	if (!l4.new_flow)
		return passed(ip); /* only new connections are judged */
	/* The node's proxy, connecting from the remote client's address after
	 * it checked the client's certificate, is no plaintext. */
	if (!local && proto == SHUNT_IPPROTO_TCP && !from_proxy) {
		__u32 mode = mtls_plaintext_verdict();

		if (mode != SHUNT_MTLS_OFF)
			report(ip, &l4, src_identity, ep->identity, SHUNT_EVENT_PLAINTEXT, SHUNT_HOOK_TC,
			       mode == SHUNT_MTLS_STRICT);
		if (mode == SHUNT_MTLS_STRICT)
			return SHUNT_TC_DROP;
	}

	verdict = policy_verdict(src_identity, ep->identity, l4.dport, proto, &rule_id);
	/* An HTTP-routes-only grant (SHUNT_VERDICT_L7) opens nothing at L4
	 * unless the proxy's L7 layer, which judges each request, is the one
	 * connecting: denied like no grant at all otherwise. */
	if (verdict == SHUNT_VERDICT_L7 && from_proxy && proto == SHUNT_IPPROTO_TCP)
		return passed(ip);
	if (verdict == SHUNT_VERDICT_ALLOW) {
		if (!local) /* a local one was counted leaving its pod */
			counter_add(SHUNT_CTR_TC_POLICY_ALLOWED, 1);
		/* For a local client too: after NAT on the node, the server's
		 * replies come from this address, not the one it asked. */
		if (proto == SHUNT_IPPROTO_UDP)
			udp_exchange_open(saddr, l4.sport, daddr, l4.dport, daddr, udp_exchange_budget);
		return passed(ip);
	}
	/* The answer of a remote server to an exchange a local pod opened. */
	if (proto == SHUNT_IPPROTO_UDP && udp_is_reply(saddr, l4.sport, daddr, l4.dport))
		return passed(ip);
	enforced = policy_enforced();
	if (local && !enforced)
		/* Counted leaving its pod (and reported by its socket hooks);
		 * one NAT on the node redirected goes unreported here. */
		return SHUNT_TC_NEXT;
	report(ip, &l4, src_identity, ep->identity, denial_type(src_identity, verdict),
	       SHUNT_HOOK_TC, enforced);
	if (!enforced) {
		counter_add(SHUNT_CTR_TC_POLICY_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	counter_add(local ? SHUNT_CTR_TC_LOCAL_DENIED : SHUNT_CTR_TC_POLICY_DENIED, 1);
	return SHUNT_TC_DROP;
}
