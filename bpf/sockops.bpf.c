// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Same-node short-circuit: sockops puts both ends of a local pod-to-pod TCP
 * connection into the sockhash; sk_msg moves each send straight into the
 * peer socket's receive queue. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "lib/sockmap_maps.bpf.h"
#include "lib/counters.bpf.h"
#include "lib/sockkey.bpf.h"
#include "lib/peer_queue.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Both ends must be pods this agent knows, on this node, or the socket stays
 * out of the sockhash: a socket whose peer never enters the map would run
 * sk_msg on every send only to miss (about half its bulk throughput lost). */
static __always_inline void maybe_short_circuit(struct bpf_sock_ops *skops)
{
	__u32 remote_ip6[4] = {skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2],
			       skops->remote_ip6[3]};
	__u32 local_ip6[4] = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2],
			      skops->local_ip6[3]};
	struct shunt_sock_key key = {};
	struct shunt_endpoint *ep;
	struct shunt_ipcache_entry *peer;
	__u64 cookie;
	__u32 raw_rport;
	long err;

	if (!ip4_of(skops->family, skops->local_ip4, local_ip6, &key.local_ip4) ||
	    !ip4_of(skops->family, skops->remote_ip4, remote_ip6, &key.remote_ip4))
		return;

	cookie = bpf_get_netns_cookie(skops);
	ep = bpf_map_lookup_elem(&shunt_endpoints_v1, &cookie);
	if (!ep || !(ep->flags & SHUNT_EP_F_SHORT_CIRCUIT)) {
		counter_add(SHUNT_CTR_SOCK_SKIP_NOT_POD, 1);
		return;
	}
	if (ep->ip4 != key.local_ip4) {
		counter_add(SHUNT_CTR_SOCK_SKIP_NOT_POD_IP, 1);
		return;
	}
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &key.remote_ip4);
	if (!peer || !(peer->flags & SHUNT_IPC_F_LOCAL)) {
		counter_add(SHUNT_CTR_SOCK_SKIP_PEER_REMOTE, 1);
		return;
	}

	raw_rport = skops->remote_port;
	asm volatile("" : "+r"(raw_rport)); /* keep the 32-bit context load */
	key.remote_port = remote_port_be16(raw_rport);
	key.local_port = bpf_htons((__u16)skops->local_port);

	err = bpf_sock_hash_update(skops, &shunt_sockhash_v1, &key, BPF_NOEXIST);
	if (!err)
		remember_sock(&key, skops);
	if (err) {
		/* Full or racing: the socket simply stays on the TCP path. */
		counter_add(SHUNT_CTR_SOCK_INSERT_FAILED, 1);
		return;
	}
	counter_add(SHUNT_CTR_SOCK_SHORT_CIRCUITED, 1);
}

SEC("sockops")
int shunt_sockops(struct bpf_sock_ops *skops)
{
	switch (skops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		maybe_short_circuit(skops);
		break;
	default:
		break;
	}
	return 1;
}

SEC("sk_msg")
int shunt_sk_msg(struct sk_msg_md *msg)
{
	__u32 remote_ip6[4] = {msg->remote_ip6[0], msg->remote_ip6[1], msg->remote_ip6[2],
			       msg->remote_ip6[3]};
	__u32 local_ip6[4] = {msg->local_ip6[0], msg->local_ip6[1], msg->local_ip6[2],
			      msg->local_ip6[3]};
	struct shunt_sock_key peer = {}, self = {};
	struct shunt_sock_state *st;
	__u32 raw_rport;
	__u32 size = msg->size;

	if (!ip4_of(msg->family, msg->local_ip4, local_ip6, &self.local_ip4) ||
	    !ip4_of(msg->family, msg->remote_ip4, remote_ip6, &self.remote_ip4))
		return SK_PASS;
	raw_rport = msg->remote_port;
	asm volatile("" : "+r"(raw_rport)); /* keep the 32-bit context load */
	self.remote_port = remote_port_be16(raw_rport);
	self.local_port = bpf_htons((__u16)msg->local_port);
	peer.local_ip4 = self.remote_ip4;
	peer.remote_ip4 = self.local_ip4;
	peer.local_port = self.remote_port;
	peer.remote_port = self.local_port;

	st = bpf_sk_storage_get(&shunt_sock_state, msg->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!st) {
		counter_add(SHUNT_CTR_SOCK_STATE_FULL, 1);
		return SK_PASS;
	}
	/* Once bytes went by TCP, redirecting later bytes could overtake them
	 * in the receiver's queue: stay on TCP until that cannot happen. */
	if (st->flags & SHUNT_SOCK_F_PEER_MISSING) {
		counter_add(SHUNT_CTR_MSG_STAY_TCP, 1);
		return SK_PASS;
	}
	if (st->flags & SHUNT_SOCK_F_SLOW_READER) {
		if (!drained(&self, &peer)) {
			counter_add(SHUNT_CTR_MSG_STAY_TCP, 1);
			return SK_PASS;
		}
		st->flags &= ~SHUNT_SOCK_F_SLOW_READER;
		counter_add(SHUNT_CTR_FLOW_RESUMED, 1);
	}
	/* Reading the peer's queue costs a map lookup and three kernel reads,
	 * so it is done once per 1/16 of the budget sent: a stuck reader ends
	 * up holding at most 17/16 of the budget, and small request/response
	 * messages almost never pay for the check. */
	st->unchecked_bytes += size;
	if (st->unchecked_bytes >= (max_queued_bytes >> 4)) {
		st->unchecked_bytes = 0;
		if (over_budget(&peer, 0)) {
			st->flags |= SHUNT_SOCK_F_SLOW_READER;
			counter_add(SHUNT_CTR_FLOW_BACKPRESSURE, 1);
			return SK_PASS;
		}
	}
	if (bpf_msg_redirect_hash(msg, &shunt_sockhash_v1, &peer, BPF_F_INGRESS) == SK_PASS) {
		counter_add(SHUNT_CTR_MSG_REDIRECTED, 1);
		counter_add(SHUNT_CTR_BYTES_REDIRECTED, size);
		return SK_PASS;
	}
	st->flags |= SHUNT_SOCK_F_PEER_MISSING;
	counter_add(SHUNT_CTR_MSG_PEER_MISS, 1);
	return SK_PASS;
}
