/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The TC guards' IPv6 half (tc.bpf.c holds the IPv4 one and includes this
 * after its shared definitions): the same judgement between the pods' IPv6
 * addresses (status.podIPs, shunt_ipcache6_v1) as between their IPv4 ones.
 *  - the extension header chain is walked (bounded): a Fragment header makes
 *    the packet a first or a later fragment, judged as IPv4 fragments are; a
 *    Routing header with segments left (the packet's real destination is not
 *    daddr) and a chain longer than SHUNT_IP6_MAX_EXT are unjudgeable;
 *  - from the pod, a global source other than the pod's own IPv6 address is
 *    spoofed; link-local and unspecified sources (neighbour discovery, DAD)
 *    pass, and the node never forwards them;
 *  - ICMPv6 neighbour discovery and MLD pass (link-scoped, hop limit 255, so
 *    never forwarded between pods); errors of an allowed flow pass, echo
 *    behind the flag; every other protocol between meshed pods is denied. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define SHUNT_ETH_P_IPV6 0x86DD
#define SHUNT_IP6_HLEN 40
#define SHUNT_NEXTHDR_HOP 0
#define SHUNT_NEXTHDR_ROUTING 43
#define SHUNT_NEXTHDR_FRAGMENT 44
#define SHUNT_NEXTHDR_AUTH 51
#define SHUNT_NEXTHDR_DEST 60
#define SHUNT_IPPROTO_ICMPV6 58
#define SHUNT_IP6_MAX_EXT 8

/* What the guards need of an IPv6 packet, offsets from the frame's start. */
struct ip6_pkt {
	struct shunt_ip6 saddr;
	struct shunt_ip6 daddr;
	__u32 l4_off;  /* the upper-layer header (or a later fragment's data) */
	__u32 end;     /* where the IPv6 payload ends */
	__be32 frag_id;
	__u8 proto;    /* the upper-layer protocol */
	bool more;     /* a fragment with more to follow */
	bool later;    /* a fragment other than the first */
	bool unjudgeable;
};

static __always_inline bool ip6_ext_header(__u8 next)
{
	return next == SHUNT_NEXTHDR_HOP || next == SHUNT_NEXTHDR_ROUTING ||
	       next == SHUNT_NEXTHDR_FRAGMENT || next == SHUNT_NEXTHDR_AUTH ||
	       next == SHUNT_NEXTHDR_DEST;
}

/* Parses an IPv6 frame's header and extension headers. False when the
 * frame is not IPv6 or its fixed header is not all there. */
static __always_inline bool ip6_parse(struct __sk_buff *skb, struct ip6_pkt *p)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6;
	__u32 off = SHUNT_ETH_HLEN + SHUNT_IP6_HLEN;
	__u8 next, h[8];
	__be16 fo;
	int i;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(SHUNT_ETH_P_IPV6))
		return false;
	ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end)
		return false;
	__builtin_memcpy(&p->saddr, &ip6->saddr, sizeof(p->saddr));
	__builtin_memcpy(&p->daddr, &ip6->daddr, sizeof(p->daddr));
	p->end = off + bpf_ntohs(ip6->payload_len);
	next = ip6->nexthdr;
#pragma unroll
	for (i = 0; i < SHUNT_IP6_MAX_EXT; i++) {
		if (!ip6_ext_header(next))
			break;
		if (bpf_skb_load_bytes(skb, off, h, sizeof(h))) {
			p->unjudgeable = true;
			break;
		}
		if (next == SHUNT_NEXTHDR_FRAGMENT) {
			__builtin_memcpy(&fo, &h[2], sizeof(fo));
			__builtin_memcpy(&p->frag_id, &h[4], sizeof(p->frag_id));
			p->later = (bpf_ntohs(fo) & 0xfff8) != 0;
			p->more = bpf_ntohs(fo) & 1;
			next = h[0];
			off += 8;
			if (p->later)
				break; /* the rest of the chain is in the first fragment */
			continue;
		}
		if (next == SHUNT_NEXTHDR_ROUTING && h[3] != 0)
			p->unjudgeable = true; /* segments left: bound elsewhere than daddr */
		off += next == SHUNT_NEXTHDR_AUTH ? ((__u32)h[1] + 2) * 4 : ((__u32)h[1] + 1) * 8;
		next = h[0];
	}
	if (!p->later && ip6_ext_header(next))
		p->unjudgeable = true; /* a chain longer than we read */
	p->proto = next;
	p->l4_off = off;
	return true;
}

/* ports and flags, as l4_of() reads them for IPv4: false when the header is
 * not there or a first fragment is too short to hold all of it. */
static __always_inline bool l4_of6(struct __sk_buff *skb, struct ip6_pkt *p, struct l4_info *out)
{
	__u8 l4[14];
	__u32 len = p->proto == SHUNT_IPPROTO_TCP ? 14 : 4;
	__u32 whole = p->proto == SHUNT_IPPROTO_TCP ? 20 : 8;

	if (p->later || (p->more && p->end < p->l4_off + whole))
		return false;
	if (bpf_skb_load_bytes(skb, p->l4_off, l4, len))
		return false;
	__builtin_memcpy(&out->sport, &l4[0], sizeof(out->sport));
	__builtin_memcpy(&out->dport, &l4[2], sizeof(out->dport));
	out->new_flow = p->proto != SHUNT_IPPROTO_TCP ||
			((l4[13] & SHUNT_TCP_SYN) && !(l4[13] & SHUNT_TCP_ACK));
	return true;
}

static __always_inline void report6(struct ip6_pkt *p, const struct l4_info *l4, __u32 src_identity,
				    __u32 dst_identity, __u8 type, __u8 hook, __u8 enforced)
{
	struct shunt_deny_event6 ev = {
		.base = {
			.src_identity = src_identity,
			.dst_identity = dst_identity,
			.sport = l4 ? l4->sport : 0,
			.dport = l4 ? l4->dport : 0,
			.proto = p->proto,
			.type = type,
			.hook = hook,
			.enforced = enforced,
		},
		.saddr6 = p->saddr,
		.daddr6 = p->daddr,
	};

	emit_denial6(&ev);
}

static __always_inline int unjudgeable6(struct ip6_pkt *p, __u32 src_identity, __u32 dst_identity,
					__u8 hook)
{
	if (!policy_enforced()) {
		counter_add(SHUNT_CTR_FRAGMENT_WOULD_DROP, 1);
		return SHUNT_TC_NEXT;
	}
	report6(p, NULL, src_identity, dst_identity, SHUNT_EVENT_FRAGMENT_DROP, hook, 1);
	counter_add(SHUNT_CTR_FRAGMENT_DROPPED, 1);
	return SHUNT_TC_DROP;
}

static __always_inline struct shunt_fragment6_key fragment6_key(struct ip6_pkt *p)
{
	struct shunt_fragment6_key k = {
		.saddr = p->saddr, .daddr = p->daddr, .id = p->frag_id, .proto = p->proto,
	};
	return k;
}

/* The packet passed; if it is a first fragment, its later ones may follow. */
static __always_inline int passed6(struct ip6_pkt *p)
{
	struct shunt_fragment6_key k;
	__u64 now;

	if (!p->more || p->later)
		return SHUNT_TC_NEXT;
	k = fragment6_key(p);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&shunt_fragments6_v1, &k, &now, BPF_ANY);
	return SHUNT_TC_NEXT;
}

static __always_inline int later_fragment6_verdict(struct ip6_pkt *p, __u32 src_identity,
						   __u32 dst_identity, __u8 hook)
{
	struct shunt_fragment6_key k = fragment6_key(p);
	__u64 *first = bpf_map_lookup_elem(&shunt_fragments6_v1, &k);

	if (first && bpf_ktime_get_ns() - *first < SHUNT_FRAGMENT_TTL_NS)
		return SHUNT_TC_NEXT;
	return unjudgeable6(p, src_identity, dst_identity, hook);
}

#define SHUNT_ICMP6_DEST_UNREACH 1
#define SHUNT_ICMP6_PARAMPROB 4
#define SHUNT_ICMP6_ECHO_REQUEST 128
#define SHUNT_ICMP6_ECHO_REPLY 129
#define SHUNT_ICMP6_MLD_QUERY 130
#define SHUNT_ICMP6_ND_REDIRECT 137
#define SHUNT_ICMP6_MLD2_REPORT 143

/* icmp_error_of_allowed_flow() for ICMPv6 (destination unreachable, packet
 * too big, time exceeded, parameter problem): the quoted packet went from
 * the recipient to the sender in a flow policy allows. */
static __always_inline bool icmp6_error_of_allowed_flow(struct __sk_buff *skb, struct ip6_pkt *p,
							__u32 sender, __u32 recipient)
{
	struct ipv6hdr inner;
	struct shunt_ip6 isrc, idst;
	__u8 ports[4];
	__be16 sport, dport;
	__u32 off = p->l4_off + 8, rule_id = 0;

	if (bpf_skb_load_bytes(skb, off, &inner, sizeof(inner)))
		return false;
	__builtin_memcpy(&isrc, &inner.saddr, sizeof(isrc));
	__builtin_memcpy(&idst, &inner.daddr, sizeof(idst));
	if (!ip6_equal(&isrc, &p->daddr) || !ip6_equal(&idst, &p->saddr))
		return false;
	if (inner.nexthdr != SHUNT_IPPROTO_TCP && inner.nexthdr != SHUNT_IPPROTO_UDP)
		return false;
	if (bpf_skb_load_bytes(skb, off + SHUNT_IP6_HLEN, ports, sizeof(ports)))
		return false;
	__builtin_memcpy(&sport, &ports[0], sizeof(sport));
	__builtin_memcpy(&dport, &ports[2], sizeof(dport));
	if (policy_verdict(recipient, sender, dport, inner.nexthdr, &rule_id) == SHUNT_VERDICT_ALLOW ||
	    policy_verdict(sender, recipient, sport, inner.nexthdr, &rule_id) == SHUNT_VERDICT_ALLOW)
		return true;
	return inner.nexthdr == SHUNT_IPPROTO_UDP && udp_is_reply6(&isrc, sport, &idst, dport);
}

static __always_inline int judge_other_protocol6(struct __sk_buff *skb, struct ip6_pkt *p,
						 __u32 src_identity, __u32 dst_identity, __u8 hook)
{
	__u8 type, enforced;

	if (p->later)
		return later_fragment6_verdict(p, src_identity, dst_identity, hook);
	if (p->proto == SHUNT_IPPROTO_ICMPV6 && !bpf_skb_load_bytes(skb, p->l4_off, &type, 1)) {
		if ((type >= SHUNT_ICMP6_MLD_QUERY && type <= SHUNT_ICMP6_ND_REDIRECT) ||
		    type == SHUNT_ICMP6_MLD2_REPORT)
			return SHUNT_TC_NEXT; /* neighbour discovery, MLD: link-scoped */
		if ((type == SHUNT_ICMP6_ECHO_REQUEST || type == SHUNT_ICMP6_ECHO_REPLY) &&
		    icmp_echo_allowed())
			return passed6(p);
		if (type >= SHUNT_ICMP6_DEST_UNREACH && type <= SHUNT_ICMP6_PARAMPROB &&
		    icmp6_error_of_allowed_flow(skb, p, src_identity, dst_identity)) {
			counter_add(SHUNT_CTR_ICMP_ERROR_ALLOWED, 1);
			return passed6(p);
		}
	}
	enforced = policy_enforced();
	report6(p, NULL, src_identity, dst_identity, SHUNT_EVENT_PROTOCOL_DENY, hook, enforced);
	if (!enforced) {
		counter_add(SHUNT_CTR_PROTO_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	counter_add(SHUNT_CTR_PROTO_DENIED, 1);
	return SHUNT_TC_DROP;
}

/* The verdict on an IPv6 packet from src to dst (both meshed pods).
 * `at_source`: the from-pod guard of the sender `ep`; else the to-pod guard
 * of the recipient `ep`. `local`: the sender is a local pod, whose socket
 * hooks (and from-pod guard) reported it already. Mirrors
 * judge_local_source() and shunt_tc_to_pod() for IPv4. */
static __always_inline int judge6(struct __sk_buff *skb, struct ip6_pkt *p,
				  struct shunt_tc_endpoint *ep, __u32 src_identity,
				  __u32 dst_identity, bool at_source, bool local)
{
	__u8 hook = at_source ? SHUNT_HOOK_TC_FROM_POD : SHUNT_HOOK_TC;
	struct l4_info l4;
	__u32 rule_id = 0;
	__u8 verdict, enforced;

	if (p->unjudgeable)
		return unjudgeable6(p, src_identity, dst_identity, hook);
	if (p->proto != SHUNT_IPPROTO_TCP && p->proto != SHUNT_IPPROTO_UDP) {
		if (local && !at_source)
			return SHUNT_TC_NEXT; /* judged leaving its pod */
		return judge_other_protocol6(skb, p, src_identity, dst_identity, hook);
	}
	if (p->later)
		return later_fragment6_verdict(p, src_identity, dst_identity, hook);
	if (!l4_of6(skb, p, &l4))
		return unjudgeable6(p, src_identity, dst_identity, hook);
	if (!l4.new_flow)
		return passed6(p);
	/* As for IPv4: the node's proxy, connecting from the remote client's
	 * address after it checked the client's certificate, is no plaintext. */
	if (!at_source && !local && p->proto == SHUNT_IPPROTO_TCP &&
	    skb->mark != SHUNT_MTLS_PROXY_MARK) {
		__u32 mode = mtls_plaintext_verdict(); /* mtls_guard.bpf.h */

		if (mode != SHUNT_MTLS_OFF)
			report6(p, &l4, src_identity, dst_identity, SHUNT_EVENT_PLAINTEXT, hook,
				mode == SHUNT_MTLS_STRICT);
		if (mode == SHUNT_MTLS_STRICT)
			return SHUNT_TC_DROP;
	}
	verdict = policy_verdict(src_identity, dst_identity, l4.dport, p->proto, &rule_id);
	/* An HTTP-routes-only grant opens nothing at L4 unless the proxy's L7
	 * layer, which judges each request, is the one connecting. */
	if (verdict == SHUNT_VERDICT_L7 && !at_source && skb->mark == SHUNT_MTLS_PROXY_MARK &&
	    p->proto == SHUNT_IPPROTO_TCP)
		return passed6(p);
	if (verdict == SHUNT_VERDICT_ALLOW) {
		if (!local)
			counter_add(SHUNT_CTR_TC_POLICY_ALLOWED, 1);
		if (p->proto == SHUNT_IPPROTO_UDP)
			udp_exchange6_open(&p->saddr, l4.sport, &p->daddr, l4.dport, ep->ip4,
					   udp_exchange_budget);
		return passed6(p);
	}
	if (p->proto == SHUNT_IPPROTO_UDP && udp_is_reply6(&p->saddr, l4.sport, &p->daddr, l4.dport))
		return passed6(p);
	enforced = policy_enforced();
	if (local && !enforced) {
		/* connect6/sendmsg6 reported what a socket sent; counted once, at
		 * the sender's guard. */
		if (at_source)
			counter_add(SHUNT_CTR_TC_LOCAL_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	report6(p, &l4, src_identity, dst_identity, denial_type(src_identity, verdict), hook, enforced);
	if (!enforced) {
		counter_add(SHUNT_CTR_TC_POLICY_WOULD_DENY, 1);
		return SHUNT_TC_NEXT;
	}
	counter_add(local ? SHUNT_CTR_TC_LOCAL_DENIED : SHUNT_CTR_TC_POLICY_DENIED, 1);
	return SHUNT_TC_DROP;
}

/* fe80::/10 and ::, the sources a pod's neighbour discovery uses. */
static __always_inline bool ip6_link_scoped_source(const struct shunt_ip6 *a)
{
	return (a->w[0] & bpf_htonl(0xffc00000)) == bpf_htonl(0xfe800000) || ip6_is_zero(a);
}

/* mtls_mark_proxy_reply() for IPv6 (bpf/tc.bpf.c): a local pod's reply to
 * a connection the node's proxy made from a remote client pod's IPv6
 * address gets the proxy's mark, which the agent's ip -6 rule delivers
 * locally. */
static __always_inline void mtls_mark_proxy_reply6(struct __sk_buff *skb, struct ip6_pkt *p)
{
	struct bpf_sock_tuple t = {};
	struct bpf_sock *sk;
	struct l4_info l4;

	if ((mtls_mode() == SHUNT_MTLS_OFF && !mtls_l7_on6()) || !l4_of6(skb, p, &l4))
		return;
	__builtin_memcpy(t.ipv6.saddr, &p->saddr, sizeof(t.ipv6.saddr));
	__builtin_memcpy(t.ipv6.daddr, &p->daddr, sizeof(t.ipv6.daddr));
	t.ipv6.sport = l4.sport;
	t.ipv6.dport = l4.dport;
	sk = bpf_sk_lookup_tcp(skb, &t, sizeof(t.ipv6), BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return;
	if (sk->mark == SHUNT_MTLS_PROXY_MARK)
		skb->mark = SHUNT_MTLS_REPLY_MARK;
	bpf_sk_release(sk);
}

static __always_inline int from_pod6(struct __sk_buff *skb, struct shunt_tc_endpoint *ep)
{
	struct ip6_pkt p = {};
	struct shunt_ipcache_entry *peer;
	struct l4_info l4;

	if (!ip6_parse(skb, &p))
		return SHUNT_TC_NEXT;
	if (!(!ip6_is_zero(&ep->ip6) && ip6_equal(&p.saddr, &ep->ip6)) &&
	    !ip6_link_scoped_source(&p.saddr)) {
		report6(&p, NULL, ep->identity, 0, SHUNT_EVENT_SPOOF_DROP, SHUNT_HOOK_TC, 1);
		counter_add(SHUNT_CTR_SPOOF_DROPPED, 1);
		return SHUNT_TC_DROP;
	}
	if (ip6_equal(&p.daddr, &ep->ip6))
		return SHUNT_TC_NEXT;
	peer = bpf_map_lookup_elem(&shunt_ipcache6_v1, &p.daddr);
	if (!peer) {
		/* As for IPv4: replies of a pod not known yet must pass. */
		if (p.proto == SHUNT_IPPROTO_UDP && !p.unjudgeable && !p.later &&
		    in_pod_cidrs(&p.daddr) && l4_of6(skb, &p, &l4))
			udp_exchange6_open(&p.saddr, l4.sport, &p.daddr, l4.dport, ep->ip4,
					   udp_exchange_budget);
		return SHUNT_TC_NEXT;
	}
	if (p.proto == SHUNT_IPPROTO_TCP && !p.unjudgeable && !p.later) {
		__u32 rule_id = 0;

		/* To a local pod too when the node proxy's L7 layer may be the
		 * one that connected from its address (an HTTP-routes-only
		 * grant of that pod's to this one): only then is the socket
		 * looked up (IPv6 pod-to-pod TCP is not short-circuited, so
		 * every packet of it comes here). */
		if (!(peer->flags & SHUNT_IPC_F_LOCAL)) {
			if (mtls_mode() != SHUNT_MTLS_OFF) /* (a tunnel's connection) */
				mtls_mark_proxy_reply6(skb, &p);
		} else if (mtls_l7_on6() && l4_of6(skb, &p, &l4) &&
			 policy_verdict(peer->identity, ep->identity, l4.sport, SHUNT_IPPROTO_TCP,
					&rule_id) == SHUNT_VERDICT_L7)
			mtls_mark_proxy_reply6(skb, &p);
	}
	return judge6(skb, &p, ep, ep->identity, peer->identity, true, true);
}

static __always_inline int to_pod6(struct __sk_buff *skb, struct shunt_tc_endpoint *ep)
{
	struct ip6_pkt p = {};
	const struct shunt_ipcache_entry *peer;
	__u32 src_identity;
	bool local;

	if (ip6_is_zero(&ep->ip6) || !ip6_parse(skb, &p) || !ip6_equal(&p.daddr, &ep->ip6))
		return SHUNT_TC_NEXT;
	peer = bpf_map_lookup_elem(&shunt_ipcache6_v1, &p.saddr);
	if (peer) {
		src_identity = peer->identity;
		local = peer->flags & SHUNT_IPC_F_LOCAL;
	} else if (in_pod_cidrs(&p.saddr)) {
		src_identity = SHUNT_IDENTITY_UNKNOWN_POD; /* a pod not known yet: no grants */
		local = false;
	} else {
		return SHUNT_TC_NEXT; /* no meshed pod */
	}
	/* The node proxy's L7 layer connects to a local pod from a local
	 * client pod's address (docs/l7.md): its socket's mark says so, and
	 * no pod can set it (marks are scrubbed crossing into the node). */
	if (local && skb->mark != SHUNT_MTLS_PROXY_MARK && !came_from_its_pod(skb, 0, &p.saddr)) {
		/* A local pod's address from anywhere but its own veth. */
		report6(&p, NULL, src_identity, ep->identity, SHUNT_EVENT_SPOOF_DROP, SHUNT_HOOK_TC, 1);
		counter_add(SHUNT_CTR_SPOOF_DROPPED, 1);
		return SHUNT_TC_DROP;
	}
	/* A local sender's new flows again: NAT on the node may have changed
	 * their destination since its from-pod guard judged them. */
	return judge6(skb, &p, ep, src_identity, ep->identity, false, local);
}
