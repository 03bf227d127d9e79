/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow control for redirected bytes. The kernel charges them to the
 * receiving socket with no per-socket limit, so a peer that stops reading
 * would soak up the node's TCP memory. Past a budget the sender moves to TCP
 * (where flow control works) and comes back once everything it sent by TCP
 * has been read, so bytes are never reordered.
 *
 * sk_msg programs may not take socket references (no bpf_sk_release), so
 * sockops records each short-circuited socket's address and cookie, and
 * sk_msg reads through it with fault-tolerant reads, checking the cookie so
 * a freed socket is never mistaken for the one recorded. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "sockmap_maps.bpf.h"
#include "counters.bpf.h"

/* Per-flow budget of unread redirected bytes; the agent sets it at load
 * time (agent/datapath/datapath.cc explains the default). */
const volatile __u32 max_queued_bytes = 64u << 20;

/* Node-wide: once all TCP memory of the node (the kernel's count, in pages,
 * which includes redirected bytes: they are charged to the receiving
 * socket) reaches this, a flow with more than a check's worth unread moves
 * to TCP, whose own memory-pressure handling then bounds it. The agent's
 * --node-tcp-memory-bytes; 0: the kernel's tcp_mem pressure threshold, read
 * live (the agent may run where that sysctl is not visible). */
const volatile __u64 node_tcp_budget_pages = 0;

/* sk_user_data carries flag bits below the psock pointer. */
#define SHUNT_SK_USER_DATA_PTRMASK (~7UL)

static __always_inline void remember_sock(struct shunt_sock_key *key, struct bpf_sock_ops *skops)
{
	struct shunt_sock_ref ref = {
		.sk_addr = (__u64)(unsigned long)skops->sk,
		.cookie = bpf_get_socket_cookie(skops),
	};

	bpf_map_update_elem(&shunt_sockref_v2, key, &ref, BPF_ANY);
}

/* The socket closed: its entry goes now rather than being evicted later
 * (an insert into a full LRU map scans for a victim: measured 0.8 us per
 * short-circuited socket when closed sockets were left behind). */
static __always_inline void forget_sock(struct shunt_sock_key *key)
{
	bpf_map_delete_elem(&shunt_sockref_v2, key);
}

/* The live socket `ref` records, or NULL. */
static __always_inline struct sock *sock_of_ref(const struct shunt_sock_ref *ref)
{
	struct sock *sk;

	if (!ref)
		return NULL;
	sk = (struct sock *)(unsigned long)ref->sk_addr;
	if (BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) != (__s64)ref->cookie)
		return NULL;
	return sk;
}

/* Redirected bytes the socket has not read yet; 0 if unknown. */
static __always_inline __u32 psock_queued(struct sock *sk)
{
	struct sk_psock *psock = NULL;
	unsigned long ud;

	if (!bpf_core_field_exists(psock->msg_tot_len))
		return 0; /* before 6.10 the kernel does not count: no budget check */
	ud = (unsigned long)BPF_CORE_READ(sk, sk_user_data);
	psock = (struct sk_psock *)(ud & SHUNT_SK_USER_DATA_PTRMASK);
	if (!psock)
		return 0;
	return BPF_CORE_READ(psock, msg_tot_len);
}

/* True when the node's TCP memory is at the node budget. */
static __always_inline bool node_over_budget(struct sock *sk)
{
	atomic_long_t *allocated;
	long *limits, pressure;
	__s64 budget = (__s64)node_tcp_budget_pages;

	if (!budget) {
		limits = BPF_CORE_READ(sk, __sk_common.skc_prot, sysctl_mem);
		if (!limits || bpf_probe_read_kernel(&pressure, sizeof(pressure), &limits[1]))
			return false;
		budget = pressure;
	}
	allocated = BPF_CORE_READ(sk, __sk_common.skc_prot, memory_allocated);
	if (!allocated || budget <= 0)
		return false;
	return BPF_CORE_READ(allocated, counter) >= budget;
}

/* Whether the flow must move to TCP for flow control, checked once per 1/16
 * of the budget sent (`sent` since the last check). A peer that closed
 * counts as over. Over the node's budget, a flow that holds more than a
 * check's worth (1/16 of its budget) unread moves too; readers that keep up
 * stay. */
static __always_inline bool over_budget(const struct shunt_sock_ref *peer_ref,
					struct shunt_sock_state *st, __u32 sent)
{
	struct sock *peer = sock_of_ref(peer_ref);
	__u64 queued, before = st->peer_queued_seen;

	if (!peer)
		return true;
	queued = (__u64)psock_queued(peer);
	st->peer_queued_seen = queued;
	if (queued > max_queued_bytes) {
		/* TCP bytes sent now are read after the redirected ones only by
		 * recvmsg: a reader that took nothing off its queue since the
		 * last check may have switched to splice, which would read them
		 * first. Only a reader seen reading moves to TCP here; the
		 * others are held to the node's budget below. */
		if (before + sent > queued)
			return true;
		counter_add(SHUNT_CTR_FLOW_HELD_NOT_READING, 1);
	}
	if (queued >= (max_queued_bytes >> 4) && node_over_budget(peer)) {
		counter_add(SHUNT_CTR_FLOW_NODE_MEMORY, 1);
		return true;
	}
	return false;
}

/* True once the peer application has read every byte this socket ever
 * wrote to TCP (the peer's copied_seq is in our sequence space; redirected
 * bytes move neither counter) and no redirected bytes wait either:
 * redirecting again cannot overtake anything. Unlike waiting for our send
 * queue to empty, this needs no ACK round trip. */
static __always_inline bool drained(struct shunt_sock_key *own_key,
				    const struct shunt_sock_ref *peer_ref)
{
	struct sock *self = sock_of_ref(bpf_map_lookup_elem(&shunt_sockref_v2, own_key));
	struct sock *peer = sock_of_ref(peer_ref);
	struct tcp_sock *self_tp, *peer_tp;

	if (!self || !peer)
		return false;
	self_tp = (struct tcp_sock *)self;
	peer_tp = (struct tcp_sock *)peer;
	return BPF_CORE_READ(self_tp, write_seq) == BPF_CORE_READ(peer_tp, copied_seq) &&
	       psock_queued(peer) == 0;
}
