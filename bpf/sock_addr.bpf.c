// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* At connect() time, before any packet leaves:
 *  - services: a TCP connection to a ClusterIP address and port becomes a
 *    connection to one backend pod, chosen from the service's slot table
 *    (weights are in the table); with no ready backend connect() fails with
 *    ECONNREFUSED. getpeername() answers the service address the
 *    application asked for;
 *  - SMI policy for local clients, judged against the backend chosen:
 *    connect() (TCP, and connected UDP) and sendto() (unconnected UDP) of a
 *    meshed pod towards another meshed pod are refused with EPERM unless a
 *    TrafficTarget allows them. In permissive mode the verdict is only
 *    counted and reported. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "lib/counters.bpf.h"
#include "lib/policy.bpf.h"
#include "lib/service_maps.bpf.h"
#include "lib/udp_exchange.bpf.h"
#include "lib/mtls_maps.bpf.h"
#include "lib/mtls_guard.bpf.h"

#define SHUNT_ECONNREFUSED 111

/* Reverse-NAT entries one local pod may make per 30 s (the agent's
 * --udp-exchanges-per-pod): one pod's one-shot sockets cannot evict the
 * others' entries from the shared LRU map. */
volatile const __u32 udp_revnat_budget = 2048;

/* balance()'s answer for a connection it sent to the node proxy's L7
 * layer, which balances its requests (SHUNT_SVC_F_L7). */
#define SHUNT_BALANCED_TO_L7 1

/* Records that replies from backend `be` to this socket show the service
 * address, charged to the sending pod (host processes share key 0). */
static __always_inline void remember_service(struct bpf_sock_addr *ctx, struct shunt_backend *be,
					     __be32 vip, __be16 port)
{
	struct shunt_revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx), .ip = be->ip, .port = be->port,
	};
	struct shunt_svc_origin rv = {.vip = vip, .port = port};
	struct shunt_svc_origin *known = bpf_map_lookup_elem(&shunt_udp_revnat_v1, &rk);
	struct shunt_endpoint *ep;
	__u64 netns;

	if (known && known->vip == vip && known->port == port)
		return; /* this socket's datagrams to this backend already show the service */
	if (!known) {
		/* A new entry: the sender pays from its budget (looked up only
		 * now, so a socket's later datagrams cost one lookup). */
		netns = bpf_get_netns_cookie(ctx);
		ep = bpf_map_lookup_elem(&shunt_endpoints_v2, &netns);
		if (!udp_budget_take_from(&shunt_revnat_budget_v1, ep ? ep->ip4 : 0,
					  bpf_ktime_get_ns(), udp_revnat_budget)) {
			counter_add(SHUNT_CTR_SVC_REVNAT_OVER_BUDGET, 1);
			return;
		}
	}
	if (bpf_map_update_elem(&shunt_udp_revnat_v1, &rk, &rv, BPF_ANY))
		counter_add(SHUNT_CTR_SVC_ORIGIN_LOST, 1);
}

/* Slot `index` of a service's table: in the entry itself for small tables,
 * else in the slot map. NULL only while a table is being replaced. */
static __always_inline struct shunt_backend *slot_of(struct shunt_svc_value *svc, __u32 index)
{
	struct shunt_slot_key slot = {.table = svc->table, .index = index};

	if (svc->table == 0)
		return index < SHUNT_SVC_INLINE ? &svc->inline_slots[index & (SHUNT_SVC_INLINE - 1)] : NULL;
	return bpf_map_lookup_elem(&shunt_slots_v1, &slot);
}

static __always_inline __u32 score_of(struct shunt_backend *be)
{
	struct shunt_backend k = {.ip = be->ip, .port = be->port};
	struct shunt_lb_score *s = bpf_map_lookup_elem(&shunt_lb_scores_v1, &k);

	return s ? s->score : 0; /* never measured: tried first */
}

/* Picks the backend of a connection: a random slot (TrafficSplit weights
 * are in the slots), or, for SHUNT_LB_P2C_EWMA, the lower-scored of two
 * distinct random slots (the power of two choices: near-best choice without
 * sending everything to one backend whose score is a moment old). The
 * choice is noted for `shuntctl lb explain`. */
static __always_inline struct shunt_backend *choose(struct shunt_svc_value *svc)
{
	__u32 zero = 0, n = svc->slots;
	__u32 a = bpf_get_prandom_u32() % n, b;
	struct shunt_backend *be_a = slot_of(svc, a), *be_b = NULL, *pick = be_a;
	struct shunt_lb_trace *tr;
	struct shunt_lb_choice *c;
	__u32 score_a = 0, score_b = 0;
	__u8 picked = 0, ncand = 1;

	if (!be_a || n == 1)
		return be_a; /* one backend: no choice to explain */
	if (svc->lb == SHUNT_LB_P2C_EWMA) {
		b = bpf_get_prandom_u32() % (n - 1);
		if (b >= a)
			b++; /* distinct from a, uniform over the others */
		be_b = slot_of(svc, b);
		if (be_b) {
			ncand = 2;
			score_a = score_of(be_a);
			score_b = score_of(be_b);
			/* b must be clearly better (over 20% lower): closer scores are
			 * noise, and the first draw, itself random, keeps the load
			 * spread instead of herding onto whichever is a hair ahead. */
			if ((__u64)score_b * 5 < (__u64)score_a * 4) {
				pick = be_b;
				picked = 1;
			}
		}
	}
	tr = bpf_map_lookup_elem(&shunt_lb_trace_v1, &zero);
	if (tr) {
		c = &tr->choices[tr->next & (SHUNT_LB_TRACE_LEN - 1)];
		tr->next++;
		c->ts_ns = bpf_ktime_get_ns();
		c->svc_id = svc->svc_id;
		c->lb = ncand == 2 ? SHUNT_LB_P2C_EWMA : SHUNT_LB_RANDOM;
		c->picked = picked;
		c->ncand = ncand;
		c->slot[0] = a;
		c->score[0] = score_a;
		c->cand[0] = *be_a;
		c->slot[1] = ncand == 2 ? b : 0;
		c->score[1] = score_b;
		if (be_b)
			c->cand[1] = *be_b;
		else
			__builtin_memset(&c->cand[1], 0, sizeof(c->cand[1]));
	}
	return pick;
}

/* A meshed pod's TCP connection to a service whose requests the node
 * proxy's L7 layer balances (SHUNT_SVC_F_L7), while that layer is on: to
 * the proxy's L7 port, the service address kept as the connection's
 * original destination (SO_ORIGINAL_DST, getpeername), as for an
 * HTTP-routes-only grant. The proxy judges policy against the backend it
 * picks for each request, so police() is not asked here. False leaves the
 * connection to the slots (not a meshed pod, no L7 layer, no storage). */
static __always_inline bool l7_service_hand_off(struct bpf_sock_addr *ctx,
						const struct shunt_svc_key *key, __be32 *daddr)
{
	struct shunt_mtls_config *m;
	struct shunt_mtls_dst *orig;
	__u64 cookie;
	__u32 zero = 0;

	/* With mTLS only: a pick may be another node's pod, reached through
	 * the tunnel (--mtls=off, the proxy's L7 layer serves local pairs). */
	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m || m->mode == SHUNT_MTLS_OFF || !m->proxy_ip4 || !m->l7_port)
		return false;
	cookie = bpf_get_netns_cookie(ctx);
	if (!bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie))
		return false; /* not a meshed pod: the kernel balances it */
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		counter_add(SHUNT_CTR_MTLS_HANDOFF_FAILED, 1);
		return false;
	}
	orig->family = SHUNT_AF_INET;
	orig->flags = 0;
	orig->ip4 = key->vip;
	orig->port = key->port;
	*daddr = m->proxy_ip4;
	ctx->user_port = m->l7_port;
	counter_add(SHUNT_CTR_L7_SERVICE_HANDED_OFF, 1);
	return true;
}

/* Resolves a service address to a backend: *daddr (the IPv4 destination,
 * read from user_ip4 or from a v4-mapped user_ip6) becomes the backend's
 * address, which the caller writes back in its family's field; the port is
 * rewritten here (user_port serves both families). Returns 0 to go on, -1
 * when connect() must fail (no ready backend). */
static __always_inline int balance(struct bpf_sock_addr *ctx, __u8 proto, bool connected,
				   __be32 *daddr)
{
	struct shunt_svc_key key = {
		.vip = *daddr, .port = (__be16)ctx->user_port, .proto = proto,
	};
	struct shunt_svc_value *svc = bpf_map_lookup_elem(&shunt_services_v2, &key);
	struct shunt_backend *be;
	struct shunt_svc_origin *origin;

	if (!svc)
		return 0; /* not a service address */
	if ((svc->flags & SHUNT_SVC_F_L7) && proto == SHUNT_IPPROTO_TCP && connected &&
	    l7_service_hand_off(ctx, &key, daddr))
		return SHUNT_BALANCED_TO_L7;
	if (svc->slots == 0) {
		counter_add(SHUNT_CTR_SVC_NO_BACKEND, 1);
		bpf_set_retval(-SHUNT_ECONNREFUSED);
		return -1;
	}
	be = choose(svc);
	if (!be) {
		/* Only while a table is being replaced: leave the address alone
		 * (nothing answers a ClusterIP, so the caller sees a failure, as it
		 * would without us) rather than guess. */
		counter_add(SHUNT_CTR_SVC_SLOT_MISSING, 1);
		return 0;
	}
	if (connected) {
		origin = bpf_sk_storage_get(&shunt_svc_origin_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
		if (origin) {
			origin->vip = key.vip;
			origin->port = key.port;
		} else {
			counter_add(SHUNT_CTR_SVC_ORIGIN_LOST, 1);
		}
	}
	if (proto == SHUNT_IPPROTO_UDP)
		/* Replies come from the backend: recvmsg4 shows them as the service. */
		remember_service(ctx, be, key.vip, key.port);
	*daddr = be->ip;
	ctx->user_port = be->port;
	counter_add(SHUNT_CTR_SVC_CONNECTS, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* A call policy does not allow: `ev` (the start of a denial record of
 * `size` bytes) is reported; 1 lets it go on in permissive mode, 0 fails
 * it with EPERM in enforce mode. */
static __always_inline int refuse(struct shunt_deny_event *ev, __u32 size, __u8 verdict)
{
	if (verdict == SHUNT_VERDICT_L7)
		/* Granted only through HTTP routes, and no L7 proxy takes it
		 * (none listening, UDP, native IPv6 without the proxy's IPv6
		 * address): such a grant opens
		 * nothing at L4. Enforce mode denies it, permissive mode
		 * reports it. */
		counter_add(SHUNT_CTR_POLICY_L7_NO_PROXY, 1);
	ev->type = verdict == SHUNT_VERDICT_L7 ? SHUNT_EVENT_POLICY_DENY_L7 : SHUNT_EVENT_POLICY_DENY;
	ev->enforced = policy_enforced();
	emit_denial_record(ev, size);
	if (!ev->enforced) {
		counter_add(SHUNT_CTR_POLICY_WOULD_DENY, 1);
		return 1;
	}
	counter_add(SHUNT_CTR_POLICY_DENIED, 1);
	return 0; /* EPERM */
}

/* police()'s answer for a connection whose grant is HTTP routes only and
 * which the node proxy's L7 layer takes (connect4/6 send it there). */
#define SHUNT_POLICE_TO_L7 2
/* police()'s answer for a connection whose grant is HTTP routes only, to
 * another node's pod: handed to the mTLS tunnel marked SHUNT_MTLS_F_L7,
 * for the receiving proxy to judge each request. */
#define SHUNT_POLICE_L7_TUNNEL 3

/* The SMI verdict on a local pod sending to daddr (IPv4, whichever family
 * the socket is) at ctx->user_port. 1 lets the call go on, 0 fails it with
 * EPERM, SHUNT_POLICE_TO_L7 sends it to the proxy's L7 layer, which judges
 * each request (in both policy modes: it reports what it would deny),
 * SHUNT_POLICE_L7_TUNNEL to the tunnel toward the pod's node, whose proxy
 * does. */
static __always_inline int police(struct bpf_sock_addr *ctx, __u8 hook, __u8 proto, __be32 daddr)
{
	struct shunt_endpoint *ep;
	struct shunt_ipcache_entry *peer;
	__u64 cookie;
	__be16 dport;
	__u32 rule_id = 0;
	__u8 verdict;

	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP)
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	ep = bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie);
	if (!ep)
		return 1; /* not a meshed pod: not ours to police */
	if (daddr == ep->ip4)
		return 1; /* a pod talking to itself */
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &daddr);
	if (!peer)
		return 1; /* not a meshed destination */
	dport = (__be16)ctx->user_port;

	verdict = policy_verdict(ep->identity, peer->identity, dport, proto, &rule_id);
	if (verdict == SHUNT_VERDICT_ALLOW) {
		counter_add(SHUNT_CTR_POLICY_ALLOWED, 1);
		return 1;
	}
	/* An HTTP-routes-only grant, while the proxies run their L7 layer
	 * (docs/l7.md): to a pod of this node, through this node's L7 port; to
	 * another node's, on through the mTLS hand-off, whose receiving proxy
	 * judges each request on the identity the certificate proves (without
	 * mTLS, no proxy of that node judges it: denied as no grant). */
	if (verdict == SHUNT_VERDICT_L7 && proto == SHUNT_IPPROTO_TCP && mtls_l7_on()) {
		if (peer->flags & SHUNT_IPC_F_LOCAL)
			return SHUNT_POLICE_TO_L7;
		if (mtls_mode() != SHUNT_MTLS_OFF) {
			counter_add(SHUNT_CTR_L7_HANDED_OFF, 1);
			return SHUNT_POLICE_L7_TUNNEL; /* connect_via_proxy() */
		}
	}
	/* A UDP server answering from its bound port to a client that sent to
	 * that port (sendto, or connect then send) is replying, not opening. */
	if (proto == SHUNT_IPPROTO_UDP &&
	    udp_is_reply(ep->ip4, bpf_htons((__u16)ctx->sk->src_port), daddr, dport))
		return 1;
	struct shunt_deny_event ev = {
		.netns_cookie = cookie,
		.src_identity = ep->identity,
		.dst_identity = peer->identity,
		.saddr = ep->ip4,
		.daddr = daddr,
		.dport = dport,
		.proto = proto,
		.hook = hook,
	};
	return refuse(&ev, sizeof(ev), verdict);
}

/* The IPv6 destination of a call, word by word (4-byte loads of user_ip6). */
static __always_inline void user_ip6_of(struct bpf_sock_addr *ctx, struct shunt_ip6 *out)
{
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2],
	      w3 = ctx->user_ip6[3];

	asm volatile("" : "+r"(w0), "+r"(w1), "+r"(w2), "+r"(w3));
	out->w[0] = w0;
	out->w[1] = w1;
	out->w[2] = w2;
	out->w[3] = w3;
}

/* police() for a native IPv6 destination: the pods' IPv6 addresses
 * (status.podIPs) have the identities of their pods (shunt_ipcache6_v1). */
static __always_inline int police6(struct bpf_sock_addr *ctx, __u8 hook, __u8 proto)
{
	struct shunt_endpoint *ep;
	struct shunt_ipcache_entry *peer;
	struct shunt_ip6 daddr;
	__u64 cookie;
	__be16 dport;
	__u32 rule_id = 0;
	__u8 verdict;

	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP)
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	ep = bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie);
	if (!ep)
		return 1; /* not a meshed pod */
	user_ip6_of(ctx, &daddr);
	if (ip6_equal(&daddr, &ep->ip6))
		return 1; /* a pod talking to itself */
	peer = bpf_map_lookup_elem(&shunt_ipcache6_v1, &daddr);
	if (!peer)
		return 1; /* not a meshed destination */
	dport = (__be16)ctx->user_port;
	verdict = policy_verdict(ep->identity, peer->identity, dport, proto, &rule_id);
	if (verdict == SHUNT_VERDICT_ALLOW) {
		counter_add(SHUNT_CTR_POLICY_ALLOWED, 1);
		return 1;
	}
	/* An HTTP-routes-only grant, as police() does for IPv4: a local pod
	 * through this node's L7 port (to_l7_proxy6), another node's through
	 * the mTLS hand-off (hand_off6), whose receiving proxy judges it. */
	if (verdict == SHUNT_VERDICT_L7 && proto == SHUNT_IPPROTO_TCP && mtls_l7_on6()) {
		if (peer->flags & SHUNT_IPC_F_LOCAL)
			return SHUNT_POLICE_TO_L7;
		if (mtls_mode() != SHUNT_MTLS_OFF) {
			counter_add(SHUNT_CTR_L7_HANDED_OFF, 1);
			return SHUNT_POLICE_L7_TUNNEL; /* hand_off6() */
		}
	}
	if (proto == SHUNT_IPPROTO_UDP && !ip6_is_zero(&ep->ip6) &&
	    udp_is_reply6(&ep->ip6, bpf_htons((__u16)ctx->sk->src_port), &daddr, dport))
		return 1;

	struct shunt_deny_event6 ev = {
		.base = {
			.netns_cookie = cookie,
			.src_identity = ep->identity,
			.dst_identity = peer->identity,
			.dport = dport,
			.proto = proto,
			.hook = hook,
		},
		.saddr6 = ep->ip6,
		.daddr6 = daddr,
	};
	return refuse(&ev.base, sizeof(ev), verdict);
}

/* The IPv4 address inside a v4-mapped IPv6 destination (::ffff:a.b.c.d),
 * which is how Java and every dual-stack socket spell an IPv4 peer: TCP and
 * connected UDP to it run only the IPv6 hooks, so they must judge and
 * balance it exactly as the IPv4 hooks would. False for a native IPv6
 * address. Each word is loaded on its own (4-byte loads of user_ip6). */
static __always_inline bool mapped_ip4(struct bpf_sock_addr *ctx, __be32 *out)
{
	__u32 w0 = ctx->user_ip6[0], w1 = ctx->user_ip6[1], w2 = ctx->user_ip6[2];

	asm volatile("" : "+r"(w0), "+r"(w1), "+r"(w2));
	if (w0 != 0 || w1 != 0 || w2 != (__u32)bpf_htonl(0x0000ffff))
		return false;
	*out = ctx->user_ip6[3];
	return true;
}

/* A hand-off without room to keep where it was going: strict mode never
 * sends it as plain TCP; nor does an HTTP-routes-only grant in enforce
 * mode (no proxy would judge its requests). */
static __always_inline int handoff_failed(const struct shunt_mtls_config *m, const bool l7)
{
	if (m->mode == SHUNT_MTLS_STRICT || (l7 && policy_enforced()))
		return 0;
	return 1;
}

/* mTLS on: a meshed pod's TCP connection to a pod on another node goes to
 * the node's proxy instead, which tunnels it (docs/mtls.md). Where it was
 * going stays with the socket for sockops, which files it under the
 * socket's own address once connected (getsockopt SO_ORIGINAL_DST reads
 * it). The proxy's own sockets are not a pod's: never handed off. `*daddr`
 * and the port become the proxy's. 1 goes on; 0 refuses (strict mode, no
 * room to keep the destination: never plain TCP instead). `l7`: granted
 * through HTTP routes only (SHUNT_MTLS_F_L7), which without room to keep
 * the destination opens nothing in enforce mode. */
static __always_inline int hand_off(struct bpf_sock_addr *ctx, __u8 proto, __be32 *daddr,
				    __be16 *dport, const bool l7)
{
	struct shunt_mtls_config *m;
	struct shunt_ipcache_entry *peer;
	struct shunt_mtls_dst *orig;
	__u64 cookie;
	__u32 zero = 0;

	if (proto != SHUNT_IPPROTO_TCP)
		return 1;
	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m || m->mode == SHUNT_MTLS_OFF || !m->proxy_ip4)
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	if (!bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie))
		return 1; /* not a meshed pod */
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, daddr);
	if (!peer || (peer->flags & SHUNT_IPC_F_LOCAL))
		return 1; /* not a pod, or one on this node: the kernel's path */
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		counter_add(SHUNT_CTR_MTLS_HANDOFF_FAILED, 1);
		return handoff_failed(m, l7);
	}
	orig->family = SHUNT_AF_INET;
	orig->flags = l7 ? SHUNT_MTLS_F_L7 : 0;
	orig->ip4 = *daddr;
	orig->port = *dport;
	*daddr = m->proxy_ip4;
	*dport = m->proxy_port;
	counter_add(SHUNT_CTR_MTLS_HANDED_OFF, 1);
	return 1;
}

/* hand_off() for an IPv4 socket, or (`mapped`) a v4-mapped destination of
 * an IPv6 one: rewrites the call's address and port when it hands off.
 * `mapped` is a constant at each call, so each program keeps only its own
 * context write. */
static __always_inline int connect_via_proxy(struct bpf_sock_addr *ctx, __u8 proto, __be32 daddr,
					     const bool mapped, const bool l7)
{
	__be16 port = (__be16)ctx->user_port;
	__be32 to = daddr;

	if (!hand_off(ctx, proto, &to, &port, l7))
		return 0;
	if (to != daddr) {
		if (mapped)
			ctx->user_ip6[3] = to;
		else
			ctx->user_ip4 = to;
		ctx->user_port = port;
	}
	return 1;
}

/* Keeps where a native IPv6 connection was going (`daddr`, the port
 * asked) in its socket's storage, for sockops and SO_ORIGINAL_DST, and
 * sends it to the proxy's IPv6 address and `port` instead (the tunnel's
 * or the L7 layer's). user_ip6 takes 4-byte stores from registers. */
static __always_inline void redirect6(struct bpf_sock_addr *ctx, struct shunt_mtls_dst *orig,
				      const struct shunt_ip6 *daddr,
				      const struct shunt_mtls_config *m, __be16 port)
{
	__u32 w0 = m->proxy_ip6[0], w1 = m->proxy_ip6[1], w2 = m->proxy_ip6[2],
	      w3 = m->proxy_ip6[3];

	orig->family = SHUNT_AF_INET6;
	orig->flags = 0;
	orig->port = (__be16)ctx->user_port;
	__builtin_memcpy(orig->ip6, daddr->w, sizeof(orig->ip6));
	ctx->user_ip6[0] = w0;
	ctx->user_ip6[1] = w1;
	ctx->user_ip6[2] = w2;
	ctx->user_ip6[3] = w3;
	ctx->user_port = port;
}

/* hand_off() for a native IPv6 destination: the remote pod's IPv6
 * address (shunt_ipcache6_v1), to the proxy's IPv6 address. */
static __always_inline int hand_off6(struct bpf_sock_addr *ctx, __u8 proto, const bool l7)
{
	struct shunt_mtls_config *m;
	struct shunt_ipcache_entry *peer;
	struct shunt_mtls_dst *orig;
	struct shunt_ip6 daddr;
	__u64 cookie;
	__u32 zero = 0;

	if (proto != SHUNT_IPPROTO_TCP)
		return 1;
	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m || m->mode == SHUNT_MTLS_OFF ||
	    !(m->proxy_ip6[0] | m->proxy_ip6[1] | m->proxy_ip6[2] | m->proxy_ip6[3]))
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	if (!bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie))
		return 1;
	user_ip6_of(ctx, &daddr);
	peer = bpf_map_lookup_elem(&shunt_ipcache6_v1, &daddr);
	if (!peer || (peer->flags & SHUNT_IPC_F_LOCAL))
		return 1;
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		counter_add(SHUNT_CTR_MTLS_HANDOFF_FAILED, 1);
		return handoff_failed(m, l7);
	}
	redirect6(ctx, orig, &daddr, m, m->proxy_port);
	if (l7)
		orig->flags = SHUNT_MTLS_F_L7;
	counter_add(SHUNT_CTR_MTLS_HANDED_OFF, 1);
	return 1;
}

/* to_l7_proxy() for a native IPv6 destination: to the proxy's IPv6
 * address and L7 port, where it was going kept as hand_off6 keeps it. */
static __always_inline int to_l7_proxy6(struct bpf_sock_addr *ctx)
{
	struct shunt_mtls_config *m;
	struct shunt_mtls_dst *orig;
	struct shunt_ip6 daddr;
	__u32 zero = 0;

	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m)
		return policy_enforced() ? 0 : 1;
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		counter_add(SHUNT_CTR_MTLS_HANDOFF_FAILED, 1);
		return policy_enforced() ? 0 : 1;
	}
	user_ip6_of(ctx, &daddr);
	redirect6(ctx, orig, &daddr, m, m->l7_port);
	counter_add(SHUNT_CTR_L7_HANDED_OFF, 1);
	return 1;
}

/* A connection police() sent to the L7 layer: to the proxy's L7 port,
 * where it was going kept as for the mTLS hand-off (SO_ORIGINAL_DST,
 * getpeername). Without room to keep it, the grant opens nothing: refused
 * in enforce mode, let through and counted in permissive mode. */
static __always_inline int to_l7_proxy(struct bpf_sock_addr *ctx, __be32 daddr, const bool mapped)
{
	struct shunt_mtls_config *m;
	struct shunt_mtls_dst *orig;
	__u32 zero = 0;

	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m)
		return policy_enforced() ? 0 : 1;
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!orig) {
		counter_add(SHUNT_CTR_MTLS_HANDOFF_FAILED, 1);
		return policy_enforced() ? 0 : 1;
	}
	orig->family = SHUNT_AF_INET;
	orig->flags = 0;
	orig->ip4 = daddr;
	orig->port = (__be16)ctx->user_port;
	if (mapped)
		ctx->user_ip6[3] = m->proxy_ip4;
	else
		ctx->user_ip4 = m->proxy_ip4;
	ctx->user_port = m->l7_port;
	counter_add(SHUNT_CTR_L7_HANDED_OFF, 1);
	return 1;
}

SEC("cgroup/connect4")
int shunt_connect4(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;
	__be32 daddr = ctx->user_ip4, asked = daddr;
	int verdict;

	/* One load up front: clang would otherwise pick the field with a
	 * branch and load through a modified context pointer (refused). */
	asm volatile("" : "+r"(proto));
	if (proto == SHUNT_IPPROTO_TCP || proto == SHUNT_IPPROTO_UDP)
		verdict = balance(ctx, (__u8)proto, true, &daddr);
	else
		verdict = 0;
	if (verdict < 0)
		return 0; /* ECONNREFUSED, set by balance() */
	if (daddr != asked)
		ctx->user_ip4 = daddr;
	if (verdict == SHUNT_BALANCED_TO_L7)
		return 1; /* the proxy judges each request against its backend */
	verdict = police(ctx, SHUNT_HOOK_CONNECT4, (__u8)proto, daddr);
	if (!verdict)
		return 0; /* EPERM */
	if (verdict == SHUNT_POLICE_TO_L7)
		return to_l7_proxy(ctx, daddr, false);
	return connect_via_proxy(ctx, (__u8)proto, daddr, false, verdict == SHUNT_POLICE_L7_TUNNEL);
}

/* TCP and connected UDP on an AF_INET6 socket: a v4-mapped destination is
 * judged and balanced as IPv4, a native one judged against the pods' IPv6
 * addresses (IPv6 services are not balanced). Unconnected UDP to a v4-mapped
 * address is for sendmsg4: the kernel hands such a datagram to the IPv4
 * path (AttackTest checks both). */
SEC("cgroup/connect6")
int shunt_connect6(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;
	__be32 daddr, asked;
	int verdict;

	asm volatile("" : "+r"(proto));
	if (!mapped_ip4(ctx, &daddr)) {
		verdict = police6(ctx, SHUNT_HOOK_CONNECT6, (__u8)proto);
		if (!verdict)
			return 0; /* EPERM */
		if (verdict == SHUNT_POLICE_TO_L7)
			return to_l7_proxy6(ctx);
		return hand_off6(ctx, (__u8)proto, verdict == SHUNT_POLICE_L7_TUNNEL);
	}
	asked = daddr;
	if (proto == SHUNT_IPPROTO_TCP || proto == SHUNT_IPPROTO_UDP)
		verdict = balance(ctx, (__u8)proto, true, &daddr);
	else
		verdict = 0;
	if (verdict < 0)
		return 0; /* ECONNREFUSED */
	if (daddr != asked)
		ctx->user_ip6[3] = daddr;
	if (verdict == SHUNT_BALANCED_TO_L7)
		return 1;
	verdict = police(ctx, SHUNT_HOOK_CONNECT6, (__u8)proto, daddr);
	if (!verdict)
		return 0; /* EPERM */
	if (verdict == SHUNT_POLICE_TO_L7)
		return to_l7_proxy(ctx, daddr, true);
	return connect_via_proxy(ctx, (__u8)proto, daddr, true, verdict == SHUNT_POLICE_L7_TUNNEL);
}

/* The service address a connection asked for, if connect4/6 balanced it. */
static __always_inline struct shunt_svc_origin *origin_of(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	asm volatile("" : "+r"(proto));
	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP)
		return NULL;
	return bpf_sk_storage_get(&shunt_svc_origin_v1, ctx->sk, 0, 0);
}

/* Where a connection handed to the proxy was going, if it was. */
static __always_inline struct shunt_mtls_dst *handed_off(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;

	asm volatile("" : "+r"(proto));
	if (proto != SHUNT_IPPROTO_TCP)
		return NULL;
	return bpf_sk_storage_get(&shunt_mtls_sk_v1, ctx->sk, 0, 0);
}

/* The application sees the address it connected to: the service's (not
 * the pod it was balanced to), the remote pod's (not the proxy it was
 * handed to). */
SEC("cgroup/getpeername4")
int shunt_getpeername4(struct bpf_sock_addr *ctx)
{
	struct shunt_svc_origin *origin = origin_of(ctx);
	struct shunt_mtls_dst *orig;

	if (origin && origin->vip) {
		ctx->user_ip4 = origin->vip;
		ctx->user_port = origin->port;
	} else if ((orig = handed_off(ctx)) && orig->family == SHUNT_AF_INET) {
		ctx->user_ip4 = orig->ip4;
		ctx->user_port = orig->port;
	}
	return 1;
}

SEC("cgroup/getpeername6")
int shunt_getpeername6(struct bpf_sock_addr *ctx)
{
	struct shunt_svc_origin *origin = origin_of(ctx);
	struct shunt_mtls_dst *orig;
	__u32 w0, w1, w2, w3;
	__be32 peer;

	if (!mapped_ip4(ctx, &peer)) {
		/* Native IPv6: only a hand-off to the proxy changed the peer. */
		orig = handed_off(ctx);
		if (!orig || orig->family != SHUNT_AF_INET6)
			return 1;
		w0 = orig->ip6[0];
		w1 = orig->ip6[1];
		w2 = orig->ip6[2];
		w3 = orig->ip6[3];
		ctx->user_ip6[0] = w0;
		ctx->user_ip6[1] = w1;
		ctx->user_ip6[2] = w2;
		ctx->user_ip6[3] = w3;
		ctx->user_port = orig->port;
		return 1;
	}
	/* A v4-mapped peer may have been balanced or handed off by connect6. */
	if (origin && origin->vip) {
		ctx->user_ip6[3] = origin->vip;
		ctx->user_port = origin->port;
	} else if ((orig = handed_off(ctx)) && orig->family == SHUNT_AF_INET) {
		ctx->user_ip6[3] = orig->ip4;
		ctx->user_port = orig->port;
	}
	return 1;
}

SEC("cgroup/sendmsg4")
int shunt_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;
	__be32 daddr = ctx->user_ip4, asked = daddr;

	asm volatile("" : "+r"(proto));
	/* Unconnected UDP (sendto): each datagram to a service address goes to
	 * a backend; connected sockets were balanced at connect(). */
	if (proto == SHUNT_IPPROTO_UDP && balance(ctx, (__u8)proto, false, &daddr) < 0)
		return 0; /* ECONNREFUSED */
	if (daddr != asked)
		ctx->user_ip4 = daddr;
	/* UDP: never sent to the L7 layer. */
	return police(ctx, SHUNT_HOOK_SENDMSG4, (__u8)proto, daddr) ? 1 : 0;
}

/* Unconnected UDP (sendto) to a native IPv6 address: judged, never
 * balanced. A v4-mapped one never gets here (the kernel runs sendmsg4). */
SEC("cgroup/sendmsg6")
int shunt_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 proto = ctx->protocol;
	__be32 mapped;

	asm volatile("" : "+r"(proto));
	if (mapped_ip4(ctx, &mapped))
		return 1;
	/* (UDP: never SHUNT_POLICE_TO_L7, and a hook returns 0 or 1.) */
	return police6(ctx, SHUNT_HOOK_SENDMSG6, (__u8)proto) ? 1 : 0;
}

/* The service address a UDP reply from backend ip:port stands for, if this
 * socket sent there through a service. */
static __always_inline struct shunt_svc_origin *revnat_of(struct bpf_sock_addr *ctx, __be32 ip)
{
	struct shunt_revnat_key rk = {
		.cookie = bpf_get_socket_cookie(ctx), .ip = ip, .port = (__be16)ctx->user_port,
	};

	return bpf_map_lookup_elem(&shunt_udp_revnat_v1, &rk);
}

/* A UDP reply from a backend shows the service address the request went to. */
SEC("cgroup/recvmsg4")
int shunt_recvmsg4(struct bpf_sock_addr *ctx)
{
	struct shunt_svc_origin *rv = revnat_of(ctx, ctx->user_ip4);

	if (rv) {
		ctx->user_ip4 = rv->vip;
		ctx->user_port = rv->port;
	}
	return 1;
}

/* The same for an AF_INET6 socket, which sees IPv4 senders v4-mapped. */
SEC("cgroup/recvmsg6")
int shunt_recvmsg6(struct bpf_sock_addr *ctx)
{
	struct shunt_svc_origin *rv;
	__be32 from;

	if (!mapped_ip4(ctx, &from))
		return 1;
	rv = revnat_of(ctx, from);
	if (rv) {
		ctx->user_ip6[3] = rv->vip;
		ctx->user_port = rv->port;
	}
	return 1;
}
