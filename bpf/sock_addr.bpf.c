// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* SMI policy for local clients, before any packet leaves: connect() (TCP,
 * and connected UDP) and sendto() (unconnected UDP) of a meshed pod towards
 * another meshed pod are refused with EPERM unless a TrafficTarget allows
 * them. In permissive mode the verdict is only counted and reported. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lib/maps.bpf.h"
#include "lib/counters.bpf.h"
#include "lib/policy.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int police(struct bpf_sock_addr *ctx, __u8 hook)
{
	__u8 proto = ctx->protocol;
	struct shunt_endpoint *ep;
	struct shunt_ipcache_entry *peer;
	__u64 cookie;
	__be32 daddr;
	__be16 dport;
	__u32 rule_id = 0;
	__u8 verdict;

	if (proto != SHUNT_IPPROTO_TCP && proto != SHUNT_IPPROTO_UDP)
		return 1;
	cookie = bpf_get_netns_cookie(ctx);
	ep = bpf_map_lookup_elem(&shunt_endpoints_v1, &cookie);
	if (!ep)
		return 1; /* not a meshed pod: not ours to police */
	daddr = ctx->user_ip4;
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
	if (verdict == SHUNT_VERDICT_L7) {
		/* Until the L7 proxy exists the pair is allowed at L4. */
		counter_add(SHUNT_CTR_POLICY_ALLOWED_L7, 1);
		return 1;
	}

	struct shunt_deny_event ev = {
		.netns_cookie = cookie,
		.src_identity = ep->identity,
		.dst_identity = peer->identity,
		.saddr = ep->ip4,
		.daddr = daddr,
		.dport = dport,
		.proto = proto,
		.type = SHUNT_EVENT_POLICY_DENY,
		.hook = hook,
		.enforced = policy_enforced(),
	};
	emit_denial(&ev);
	if (!ev.enforced) {
		counter_add(SHUNT_CTR_POLICY_WOULD_DENY, 1);
		return 1;
	}
	counter_add(SHUNT_CTR_POLICY_DENIED, 1);
	return 0; /* EPERM */
}

SEC("cgroup/connect4")
int shunt_connect4(struct bpf_sock_addr *ctx)
{
	return police(ctx, SHUNT_HOOK_CONNECT4);
}

SEC("cgroup/sendmsg4")
int shunt_sendmsg4(struct bpf_sock_addr *ctx)
{
	return police(ctx, SHUNT_HOOK_SENDMSG4);
}
