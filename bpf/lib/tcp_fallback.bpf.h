/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* When a flow must leave the short-circuit. Redirected bytes wait in the
 * receiver's psock queue, which only the sockmap's recvmsg reads: splice,
 * zero-copy receive, urgent data, MSG_WAITALL, SO_RCVLOWAT, FIONREAD and
 * receive cmsgs all work on the TCP receive queue instead. So a flow uses
 * the short-circuit only toward a socket seen reading with a plain recvmsg
 * (SHUNT_REF_F_READS), and once either end uses one of those features the
 * flow takes TCP for good (SHUNT_REF_F_TCP) and its sockets leave the
 * sockhash as soon as nothing redirected is left unread (sockops, when TCP
 * acks data of either end), after which the kernel treats them as plain
 * TCP sockets.
 * docs/short-circuit.md has the table of features and how each is seen. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sockmap_maps.bpf.h"

static __always_inline void sock_key_swap(const struct shunt_sock_key *k, struct shunt_sock_key *out)
{
	out->local_ip4 = k->remote_ip4;
	out->remote_ip4 = k->local_ip4;
	out->local_port = k->remote_port;
	out->remote_port = k->local_port;
	out->pad = 0;
}

static __always_inline void tcp_reason_count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&shunt_tcp_reasons_v1, &reason);

	if (c)
		*c += 1;
}

/* Reasons whose readers do not read the psock queue at all (splice, the
 * zero-copy receive mapping): the sender keeps redirecting until what it
 * redirected was read (by a recvmsg the reader falls back to, as zero-copy
 * receivers do for what they cannot map), so TCP bytes never overtake it. */
static __always_inline bool reason_drains_first(__u32 reason)
{
	return reason == SHUNT_TCP_SPLICE || reason == SHUNT_TCP_ZEROCOPY_RECEIVE;
}

/* Marks one end's record; true if its flow was not marked before. */
static __always_inline bool ref_mark_tcp(struct shunt_sock_ref *ref, __u32 reason, __u64 now)
{
	__u32 old = __sync_fetch_and_or(&ref->flags, SHUNT_REF_F_TCP);

	__sync_val_compare_and_swap(&ref->reason, 0, reason);
	if (old & SHUNT_REF_F_TCP)
		return false;
	ref->tcp_since_ns = now;
	return true;
}

/* The flow of socket `key` takes TCP for good because of `reason`: both
 * ends' records say so (each sender checks its peer's), and the reason is
 * counted once per flow. True if this call counted it. */
static __always_inline bool flow_to_tcp(const struct shunt_sock_key *key, __u32 reason, __u64 now)
{
	struct shunt_sock_key peer_key = {};
	struct shunt_sock_ref *ref = bpf_map_lookup_elem(&shunt_sockref_v2, key);
	struct shunt_sock_ref *peer;
	bool first;

	if (!ref)
		return false;
	first = ref_mark_tcp(ref, reason, now);
	sock_key_swap(key, &peer_key);
	peer = bpf_map_lookup_elem(&shunt_sockref_v2, &peer_key);
	if (peer)
		ref_mark_tcp(peer, reason, now);
	if (first)
		tcp_reason_count(reason);
	return first;
}
