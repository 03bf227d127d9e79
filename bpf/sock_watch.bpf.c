// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Watches how short-circuited sockets are read and written, through the
 * sock_recv_length and sock_send_length tracepoints (raw tracepoints: they
 * need no BTF-typed tracing, which kernels under lockdown refuse), and
 * moves a flow to TCP once one of its ends uses a feature the short-circuit
 * cannot give the same way (lib/tcp_fallback.bpf.h has the model). Both
 * tracepoints fire after every socket recvmsg/sendmsg on the node, so each
 * program leaves after one kernel read for any socket not in a sockmap. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "lib/maps.bpf.h"
#include "lib/sockmap_maps.bpf.h"
#include "lib/tcp_fallback.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define MSG_OOB 0x1
#define MSG_TRUNC 0x20
#define MSG_WAITALL 0x100
#define MSG_ZEROCOPY 0x4000000

/* Sockets known to read plainly (their record has SHUNT_REF_F_READS), by
 * cookie, in a small direct-mapped cache: a plain read of such a socket,
 * which is nearly every read on the node's short-circuited sockets, leaves
 * without the record's hash lookup. Cookies are never reused, so a hit is
 * always right; a miss (another socket in the slot) costs the lookup, as
 * before. One cache for all CPUs, since a socket is read on whichever CPU
 * its reader runs: slots are written only on a miss, as one aligned 64-bit
 * store, never seen half-written. Not pinned: an optimization that starts
 * empty with each load. */
#define SHUNT_READS_SEEN_SLOTS 1024
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHUNT_READS_SEEN_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} shunt_reads_seen SEC(".maps");

/* The record of `sk` if it is one of our short-circuited sockets, read
 * with as few kernel reads as the hot path allows: only sockmap sockets
 * carry a psock in sk_user_data, and the 4-tuple is the first 16 bytes of
 * struct sock_common. */
static __always_inline struct shunt_sock_ref *short_circuited(const struct sock *sk,
							       struct shunt_sock_key *key)
{
	struct {
		__be32 daddr, rcv_saddr;
		__u32 hash;
		__be16 dport;
		__u16 num;
	} head;

	if (!BPF_CORE_READ(sk, sk_user_data))
		return NULL;
	if (bpf_probe_read_kernel(&head, sizeof(head), &sk->__sk_common))
		return NULL;
	key->local_ip4 = head.rcv_saddr;
	key->remote_ip4 = head.daddr;
	key->local_port = bpf_htons(head.num);
	key->remote_port = head.dport;
	key->pad = 0;
	return bpf_map_lookup_elem(&shunt_sockref_v2, key);
}

/* After a recvmsg (or read) on a socket: (sk, bytes or -errno, flags). A
 * plain read makes the socket a redirect target; MSG_WAITALL, MSG_OOB and
 * MSG_TRUNC, and options only TCP's own recvmsg honours (a receive low
 * watermark, timestamps), move the flow to TCP. */
SEC("raw_tracepoint/sock_recv_length")
int shunt_watch_recv(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int ret = (int)ctx->args[1];
	int flags = (int)ctx->args[2];
	const bool plain = !(flags & (MSG_WAITALL | MSG_OOB | MSG_TRUNC));
	struct shunt_sock_key key = {};
	struct shunt_sock_ref *ref;
	unsigned long sk_flags;
	__u64 cookie, *seen = NULL;
	__u32 reason = 0, slot;

	/* Only a read that returned data says how the program reads: a
	 * speculative one that found nothing (EAGAIN) may be followed by
	 * splice (HAProxy reads so before it splices). */
	if (plain && ret <= 0)
		return 0;
	/* Most of the node's sockets are in no sockmap: they leave here,
	 * after one kernel read, before the cache is asked. */
	if (!BPF_CORE_READ(sk, sk_user_data))
		return 0;
	cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (plain && cookie) {
		slot = (__u32)cookie & (SHUNT_READS_SEEN_SLOTS - 1);
		seen = bpf_map_lookup_elem(&shunt_reads_seen, &slot);
		if (seen && *seen == cookie)
			return 0;
	}
	ref = short_circuited(sk, &key);
	if (!ref)
		return 0;
	if (plain && (ref->flags & SHUNT_REF_F_READS)) {
		if (seen && cookie == ref->cookie)
			*seen = cookie;
		return 0;
	}
	if (cookie != ref->cookie)
		return 0; /* another socket on a reused 4-tuple */
	sk_flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if (flags & MSG_WAITALL)
		reason = SHUNT_TCP_WAITALL;
	else if (flags & MSG_OOB)
		reason = SHUNT_TCP_URGENT;
	else if (flags & MSG_TRUNC)
		reason = SHUNT_TCP_RECV_TRUNC;
	else if (BPF_CORE_READ(sk, sk_rcvlowat) > 1)
		reason = SHUNT_TCP_RCVLOWAT;
	else if (sk_flags & ((1UL << SOCK_RCVTSTAMP) | (1UL << SOCK_RCVTSTAMPNS)))
		reason = SHUNT_TCP_RECEIVE_CMSG;
	if (reason) {
		flow_to_tcp(&key, reason, bpf_ktime_get_ns());
	} else {
		__sync_fetch_and_or(&ref->flags, SHUNT_REF_F_READS);
		if (seen)
			*seen = cookie;
	}
	return 0;
}

/* After a sendmsg (or write): urgent data and zero-copy sends. sk_msg has
 * already decided this send by then (on x86_64 it saw an urgent byte
 * itself: lib/send_flags.bpf.h); the flow's later sends take TCP. */
SEC("raw_tracepoint/sock_send_length")
int shunt_watch_send(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	int flags = (int)ctx->args[2];
	struct shunt_sock_key key = {};
	struct shunt_sock_ref *ref;

	if (!(flags & (MSG_OOB | MSG_ZEROCOPY)))
		return 0;
	ref = short_circuited(sk, &key);
	if (ref && BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) == (__s64)ref->cookie)
		flow_to_tcp(&key, flags & MSG_OOB ? SHUNT_TCP_URGENT : SHUNT_TCP_ZEROCOPY_SEND,
			    bpf_ktime_get_ns());
	return 0;
}
