// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Same-node short-circuit: sockops puts both ends of a local pod-to-pod TCP
 * connection into the sockhash; sk_msg moves each send straight into the
 * peer socket's receive queue. Both also keep the connection's flow record
 * (lib/flow.bpf.h): sockops its life cycle and TCP statistics, sk_msg the
 * bytes and request/response timing of short-circuited sends. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/maps.bpf.h"
#include "lib/sockmap_maps.bpf.h"
#include "lib/counters.bpf.h"
#include "lib/sockkey.bpf.h"
#include "lib/peer_queue.bpf.h"
#include "lib/flow.bpf.h"
#include "lib/policy.bpf.h"
#include "lib/tcp_fallback.bpf.h"
#include "lib/send_flags.bpf.h"
#include "lib/mtls_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Both ends must be pods this agent knows, on this node, or the socket stays
 * out of the sockhash: a socket whose peer never enters the map would run
 * sk_msg on every send only to miss (about half its bulk throughput lost). */
/* The socket's own addresses and ports (IPv4, or v4-mapped IPv6). */
static __always_inline bool sock_key_of(struct bpf_sock_ops *skops, struct shunt_sock_key *key)
{
	__u32 remote_ip6[4] = {skops->remote_ip6[0], skops->remote_ip6[1], skops->remote_ip6[2],
			       skops->remote_ip6[3]};
	__u32 local_ip6[4] = {skops->local_ip6[0], skops->local_ip6[1], skops->local_ip6[2],
			      skops->local_ip6[3]};
	__u32 family = skops->family, local_ip4 = skops->local_ip4, remote_ip4 = skops->remote_ip4;
	__u32 raw_rport;

	/* Load every context field up front: left to itself clang picks the
	 * field's address with a branch and loads through a modified context
	 * pointer, which the verifier refuses. */
	asm volatile("" : "+r"(family), "+r"(local_ip4), "+r"(remote_ip4));
	if (!ip4_of(family, local_ip4, local_ip6, &key->local_ip4) ||
	    !ip4_of(family, remote_ip4, remote_ip6, &key->remote_ip4))
		return false;
	raw_rport = skops->remote_port;
	asm volatile("" : "+r"(raw_rport)); /* keep the 32-bit context load */
	key->remote_port = remote_port_be16(raw_rport);
	key->local_port = bpf_htons((__u16)skops->local_port);
	return true;
}

/* The local pod whose network namespace the socket is in, or NULL. */
static __always_inline struct shunt_endpoint *pod_of(struct bpf_sock_ops *skops)
{
	__u64 cookie = bpf_get_netns_cookie(skops);

	return bpf_map_lookup_elem(&shunt_endpoints_v2, &cookie);
}

/* A pod's socket on the pod's address: not loopback inside the pod. */
static __always_inline bool on_pod_ip(const struct shunt_endpoint *ep,
				      const struct shunt_sock_key *key)
{
	return ep && ep->ip4 == key->local_ip4;
}

/* The flow key of a socket's connection, oriented client -> server, from
 * the socket's own view and which end it is, as its addresses have it. */
static __always_inline void flow_key_of_addrs(const struct shunt_sock_key *sk, bool client,
					      struct shunt_flow_key *k)
{
	k->client_ip4 = client ? sk->local_ip4 : sk->remote_ip4;
	k->server_ip4 = client ? sk->remote_ip4 : sk->local_ip4;
	k->client_port = client ? sk->local_port : sk->remote_port;
	k->server_port = client ? sk->remote_port : sk->local_port;
}

/* The same, under which its record is kept (a leg to the mTLS proxy by the
 * destination the pod asked for). */
static __always_inline void flow_key_of(const struct shunt_sock_key *sk, bool client,
					struct shunt_flow_key *k)
{
	flow_key_of_addrs(sk, client, k);
	flow_key_unproxy(k);
}

/* Whether a port is the node proxy's L7 port (a connection to it was sent
 * to the L7 layer by connect4). */
static __always_inline bool l7_port_is(__be16 port)
{
	__u32 zero = 0;
	struct shunt_mtls_config *m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);

	return m && m->l7_port && m->l7_port == port;
}

/* Starts (or joins, when the other end is a local pod too) the record of
 * this connection. The client end starts it at connect(), so the connect
 * latency is measured; a server end with a remote client starts it when the
 * handshake completes. The verdict is what policy says for the pair now. */
static __always_inline struct shunt_flow *flow_open(struct bpf_sock_ops *skops,
						     const struct shunt_sock_key *key,
						     const struct shunt_endpoint *ep, bool client,
						     __u64 now)
{
	struct shunt_flow_key fk = {};
	struct shunt_ipcache_entry *peer;
	struct shunt_flow *f;
	__u32 side = client ? SHUNT_FLOW_F_CLIENT_LOCAL : SHUNT_FLOW_F_SERVER_LOCAL;
	__u32 rule_id = 0;
	__u8 v;

	flow_key_of(key, client, &fk);
	/* A client end starts the record (nothing can be there before its
	 * connect()); a server end usually joins its local client's. */
	f = client ? NULL : bpf_map_lookup_elem(&shunt_flows_v3, &fk);
	if (!f) {
		/* Fails only with EEXIST when the other end raced us here. */
		bool created = !bpf_map_update_elem(&shunt_flows_v3, &fk, &shunt_zero_flow, BPF_NOEXIST);

		f = bpf_map_lookup_elem(&shunt_flows_v3, &fk);
		if (!f) {
			counter_add(SHUNT_CTR_FLOW_UNTRACKED, 1);
			return NULL;
		}
		if (!created)
			goto join;
		f->key = fk;
		if (fk.server_ip4 != (client ? key->remote_ip4 : key->local_ip4))
			/* flow_key_unproxy: handed to the proxy's L7 or mTLS port */
			__sync_fetch_and_or(&f->flags, client && l7_port_is(key->remote_port)
							       ? SHUNT_FLOW_F_L7
							       : SHUNT_FLOW_F_MTLS);
		f->start_ns = now;
		peer = bpf_map_lookup_elem(&shunt_ipcache_v1, client ? &fk.server_ip4 : &fk.client_ip4);
		if (client) {
			f->src_identity = ep->identity;
			f->dst_identity = peer ? peer->identity : 0;
		} else {
			f->src_identity = peer ? peer->identity : 0;
			f->dst_identity = ep->identity;
		}
		if (!f->src_identity || !f->dst_identity || fk.client_ip4 == fk.server_ip4) {
			f->verdict = SHUNT_FLOW_UNMESHED;
		} else {
			v = policy_verdict(f->src_identity, f->dst_identity, fk.server_port,
					   SHUNT_IPPROTO_TCP, &rule_id);
			f->verdict = v == SHUNT_VERDICT_ALLOW ? SHUNT_FLOW_ALLOWED
				     : v == SHUNT_VERDICT_L7  ? SHUNT_FLOW_L7
							      : SHUNT_FLOW_AUDIT;
			f->rule_id = rule_id;
		}
		counter_add(SHUNT_CTR_FLOWS_OPENED, 1);
	}
join:
	/* The other end may be setting flags at the same time, under its own
	 * socket's lock: an atomic OR, never a read-modify-write. */
	__sync_fetch_and_or(&f->flags, side | (client ? 0 : SHUNT_FLOW_F_ESTABLISHED));
	/* Be told when this end closes. */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	return f;
}

/* The proxy's connection to a local pod (its socket marked), from the
 * client pod's address: with mTLS, a remote client's, recorded as that
 * client's, as a local client end, flagged as carried between nodes; from
 * the L7 layer, a local client's, whose own record already counts the
 * exchange (flagged so telemetry leaves it out). */
static __always_inline void flow_open_proxy(struct bpf_sock_ops *skops,
					    const struct shunt_sock_key *key, __u64 now)
{
	struct bpf_sock *sk = skops->sk;
	struct shunt_ipcache_entry *peer;
	struct shunt_endpoint as = {};
	struct shunt_flow *f;

	if (!sk || sk->mark != SHUNT_MTLS_PROXY_MARK)
		return;
	peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &key->local_ip4);
	as.ip4 = key->local_ip4;
	as.identity = peer ? peer->identity : 0;
	f = flow_open(skops, key, &as, true, now);
	if (f)
		__sync_fetch_and_or(&f->flags, peer && (peer->flags & SHUNT_IPC_F_LOCAL)
						       ? SHUNT_FLOW_F_L7_UPSTREAM
						       : SHUNT_FLOW_F_MTLS | SHUNT_FLOW_F_MTLS_INBOUND);
}

/* The proxy's end of a pod's leg to it (mTLS, the sending node): it joins
 * the pod's record (kept under the real destination) as its server end, so
 * the leg is counted as any pair of local ends is, short-circuited or not.
 * The record's destination entry then stays until the last end closes. */
static __always_inline struct shunt_flow *flow_join_proxy_leg(struct bpf_sock_ops *skops,
							      const struct shunt_sock_key *key)
{
	struct shunt_flow_key fk = {};
	struct shunt_flow *f;

	flow_key_of(key, false, &fk);
	if (fk.server_ip4 == key->local_ip4)
		return NULL; /* not the proxy's end of a handed-off connection */
	f = bpf_map_lookup_elem(&shunt_flows_v3, &fk);
	if (!f)
		return NULL;
	__sync_fetch_and_or(&f->flags, SHUNT_FLOW_F_SERVER_LOCAL | SHUNT_FLOW_F_ESTABLISHED);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
	return f;
}

/* The client end's record once the handshake completed, or NULL. */
static __always_inline struct shunt_flow *flow_established(const struct shunt_sock_key *key,
							   __u64 now)
{
	struct shunt_flow_key fk = {};
	struct shunt_flow *f;

	flow_key_of(key, true, &fk);
	f = bpf_map_lookup_elem(&shunt_flows_v3, &fk);
	if (!f)
		return NULL;
	__sync_fetch_and_or(&f->flags, SHUNT_FLOW_F_ESTABLISHED);
	if (now > f->start_ns)
		f->connect_ns = now - f->start_ns;
	return f;
}

/* The worst way a flow ended, from the SHUNT_FLOW_F_END bits its closing
 * ends set. */
static __always_inline __u8 flow_end_of(__u32 flags)
{
	if (flags & SHUNT_FLOW_F_END(SHUNT_FLOW_REFUSED))
		return SHUNT_FLOW_REFUSED;
	if (flags & SHUNT_FLOW_F_END(SHUNT_FLOW_RESET))
		return SHUNT_FLOW_RESET;
	return SHUNT_FLOW_CLOSED;
}

/* One local end closed (new state TCP_CLOSE). The TCP path's statistics are
 * read from the client end when it is local, else from the server end; bytes
 * of an end in the sockhash were counted by sk_msg instead (TCP never saw
 * the redirected ones). The record goes to the agent when no local end is
 * left open. */
static __always_inline void flow_close(struct bpf_sock_ops *skops, const struct shunt_sock_key *key,
				       __u32 old_state, __u64 now)
{
	struct shunt_flow_key fk = {};
	bool client_end;
	struct shunt_flow *f = flow_lookup(key->local_ip4, key->remote_ip4, key->local_port,
					   key->remote_port, &client_end);
	struct shunt_sock_ref *ref;
	__u32 side, mark, old;
	__u8 end;

	if (!f) {
		counter_add(SHUNT_CTR_FLOW_EVICTED, 1);
		return;
	}
	if (old_state == BPF_TCP_SYN_SENT || old_state == BPF_TCP_SYN_RECV)
		end = SHUNT_FLOW_REFUSED;
	else if (old_state == BPF_TCP_ESTABLISHED || old_state == BPF_TCP_CLOSE_WAIT ||
		 old_state == BPF_TCP_FIN_WAIT1)
		end = SHUNT_FLOW_RESET; /* no orderly FIN exchange first */
	else
		end = SHUNT_FLOW_CLOSED;

	if (client_end || !(f->flags & SHUNT_FLOW_F_CLIENT_LOCAL)) {
		__u32 fwd = client_end ? 0 : 1; /* the index of what this end sent */
		/* TCP's byte counters include a FIN's sequence number. Ours was
		 * sent in these states and acked if nothing is outstanding; the
		 * peer's was received in these (FIN_WAIT2 -> CLOSE is the way into
		 * TIME_WAIT; its orphan-timeout variant is rare). */
		bool fin_sent = old_state == BPF_TCP_FIN_WAIT1 || old_state == BPF_TCP_FIN_WAIT2 ||
				old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_LAST_ACK;
		bool fin_acked = fin_sent && skops->snd_una == skops->snd_nxt;
		bool fin_received = old_state == BPF_TCP_CLOSE_WAIT || old_state == BPF_TCP_LAST_ACK ||
				    old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_FIN_WAIT2;
		__u64 acked = skops->bytes_acked, received = skops->bytes_received;

		if (fin_acked && acked)
			acked--;
		if (fin_received && received)
			received--;
		if (!(f->flags & (client_end ? SHUNT_FLOW_F_SC_CLIENT : SHUNT_FLOW_F_SC_SERVER))) {
			f->bytes[fwd & 1] = acked;
			f->msgs[fwd & 1] = skops->data_segs_out;
		}
		if (!(f->flags & (client_end ? SHUNT_FLOW_F_SC_SERVER : SHUNT_FLOW_F_SC_CLIENT))) {
			f->bytes[(fwd ^ 1) & 1] = received;
			f->msgs[(fwd ^ 1) & 1] = skops->data_segs_in;
		}
		if ((f->flags & SHUNT_FLOW_F_SHORT_CIRCUIT) != SHUNT_FLOW_F_SHORT_CIRCUIT) {
			f->srtt_us = skops->srtt_us >> 3; /* the kernel keeps it << 3 */
			f->min_rtt_us = skops->rtt_min;
			f->retrans = skops->total_retrans;
		}
	}
	/* An end that left the sockhash counts what it sent since from TCP:
	 * its sk_msg no longer ran. */
	ref = bpf_map_lookup_elem(&shunt_sockref_v2, key);
	if (ref && (ref->flags & SHUNT_REF_F_RELEASED)) {
		__u32 fwd = client_end ? 0 : 1;
		bool fin_sent = old_state == BPF_TCP_FIN_WAIT1 || old_state == BPF_TCP_FIN_WAIT2 ||
				old_state == BPF_TCP_CLOSING || old_state == BPF_TCP_LAST_ACK;
		__u64 acked = skops->bytes_acked;
		__u32 segs = skops->data_segs_out;

		if (fin_sent && skops->snd_una == skops->snd_nxt && acked)
			acked--;
		if (acked > ref->acked_at_release)
			f->bytes[fwd & 1] += acked - ref->acked_at_release;
		if (segs > ref->segs_out_at_release)
			f->msgs[fwd & 1] += segs - ref->segs_out_at_release;
	}
	/* Both ends can close at once, on two CPUs under two socket locks
	 * (a simultaneous or abortive close). One atomic OR marks this end
	 * closed and says how; the value it returns decides: the end whose OR
	 * left no local end open is the one, the only one, that ships the
	 * record. What the other end wrote before its OR is visible here
	 * (fetching atomics are fully ordered). An end that never joined
	 * (no _LOCAL bit) closes nothing. */
	side = client_end ? SHUNT_FLOW_F_CLIENT_LOCAL : SHUNT_FLOW_F_SERVER_LOCAL;
	mark = (side << SHUNT_FLOW_F_CLOSED_SHIFT) | SHUNT_FLOW_F_END(end);
	old = __sync_fetch_and_or(&f->flags, mark);
	if (!shunt_flow_closes_last(old, mark))
		return;
	f->end = flow_end_of(old | mark);
	/* A flow whose reader never read with recvmsg ends uncounted until
	 * now: nothing marked it, it just never qualified. */
	if (f->tcp_reason == SHUNT_TCP_NO_PLAIN_READ)
		tcp_reason_count(SHUNT_TCP_NO_PLAIN_READ);
	fk = f->key;
	/* A connection handed to the mTLS proxy: both ends needed its
	 * destination to find this record; the last one is closing. */
	if ((old & SHUNT_FLOW_F_HANDED_OFF) && !(old & SHUNT_FLOW_F_MTLS_INBOUND)) {
		struct shunt_mtls_addr pod = {.ip4 = fk.client_ip4, .port = fk.client_port};

		bpf_map_delete_elem(&shunt_mtls_orig_v1, &pod);
	}
	flow_finish(f, &fk, now);
}

/* A socket feature, set before the connection was established (on the
 * socket or the listener it was accepted from), that the short-circuit
 * cannot give: the flow stays on TCP. 0 if none. */
static __always_inline __u32 unfit_reason(struct bpf_sock_ops *skops)
{
	struct bpf_sock *bsk = skops->sk;
	struct tcp_sock *tp;
	struct sock *sk;
	unsigned long sk_flags;

	if (!bsk)
		return 0;
	if (bpf_skc_to_mptcp_sock(bsk))
		return SHUNT_TCP_MPTCP; /* MPTCP reads its subflows without recvmsg */
	tp = bpf_skc_to_tcp_sock(bsk);
	if (!tp)
		return 0;
	sk = (struct sock *)tp;
	sk_flags = sk->__sk_common.skc_flags;
	if (sk_flags & (1UL << SOCK_ZEROCOPY))
		return SHUNT_TCP_ZEROCOPY_SEND;
	if (sk->sk_rcvlowat > 1)
		return SHUNT_TCP_RCVLOWAT;
	if (sk_flags & ((1UL << SOCK_RCVTSTAMP) | (1UL << SOCK_RCVTSTAMPNS)))
		return SHUNT_TCP_RECEIVE_CMSG;
	return 0;
}

/* The pod's end (client) or the node proxy's end (server) of a connection
 * connect4 handed to the proxy: the proxy's outbound address and its
 * outbound (mTLS) or L7 port. */
static __always_inline bool mtls_proxy_leg(const struct shunt_sock_key *key, bool client_end)
{
	__u32 zero = 0;
	struct shunt_mtls_config *m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	__be32 ip;
	__be16 port;

	if (!m || !m->proxy_ip4)
		return false;
	ip = client_end ? key->remote_ip4 : key->local_ip4;
	port = client_end ? key->remote_port : key->local_port;
	return ip == m->proxy_ip4 && ((m->mode != SHUNT_MTLS_OFF && port == m->proxy_port) ||
				      (m->l7_port && port == m->l7_port));
}

/* Both ends must be pods this agent knows, on this node (or a pod and the
 * node proxy it was handed to), or the socket stays out of the sockhash: a
 * socket whose peer never enters the map would run sk_msg on every send
 * only to miss (about half its bulk throughput lost). The client end is
 * established first (it acks the SYN-ACK after its callback ran), so the
 * server end joins only if the client did. */
static __always_inline void maybe_short_circuit(struct bpf_sock_ops *skops,
						struct shunt_sock_key *key,
						const struct shunt_endpoint *ep, struct shunt_flow *f,
						bool client_end)
{
	struct shunt_sock_key peer_key = {};
	struct shunt_ipcache_entry *peer;
	__u32 reason;
	long err;

	/* A pod's connection handed to the node proxy (mTLS), at either end,
	 * is a local pair like any other: the hand-off costs no trip through
	 * the TCP/IP stack. */
	const bool proxy_leg = mtls_proxy_leg(key, client_end);
	/* And on the receiving node, the proxy's connection to a local pod (its
	 * socket marked, from the remote client's address). */
	struct bpf_sock *bsk = skops->sk;
	const bool proxy_in = !ep && client_end && bsk && bsk->mark == SHUNT_MTLS_PROXY_MARK;

	if (!ep && !(proxy_leg && !client_end) && !proxy_in) {
		counter_add(SHUNT_CTR_SOCK_SKIP_NOT_POD, 1);
		return;
	}
	if (ep && !on_pod_ip(ep, key)) {
		counter_add(SHUNT_CTR_SOCK_SKIP_NOT_POD_IP, 1);
		return;
	}
	if (!proxy_leg) {
		peer = bpf_map_lookup_elem(&shunt_ipcache_v1, &key->remote_ip4);
		if (!peer || !(peer->flags & SHUNT_IPC_F_LOCAL)) {
			/* A pod's end whose peer has a remote pod's address is the
			 * proxy's marked socket if that peer is a local socket the
			 * client end recorded (only the proxy's transparent sockets
			 * have such addresses here). */
			struct shunt_sock_key from_proxy = {};

			sock_key_swap(key, &from_proxy);
			if (client_end || !peer || !bpf_map_lookup_elem(&shunt_sockref_v2, &from_proxy)) {
				counter_add(SHUNT_CTR_SOCK_SKIP_PEER_REMOTE, 1);
				return;
			}
		}
	}
	if (!short_circuit_on()) {
		counter_add(SHUNT_CTR_SOCK_SKIP_WATCH_MISSING, 1);
		return;
	}
	sock_key_swap(key, &peer_key);
	reason = ep && !(ep->flags & SHUNT_EP_F_SHORT_CIRCUIT) ? SHUNT_TCP_OPTED_OUT
							      : unfit_reason(skops);
	if (!reason && !client_end && !bpf_map_lookup_elem(&shunt_sockref_v2, &peer_key))
		reason = SHUNT_TCP_PEER_MISSING;
	if (reason) {
		bool counted = false;

		/* The other end may be in already (a server end that cannot
		 * join): its flow takes TCP and it leaves the sockhash, and the
		 * reason is counted there, once per flow. */
		if (!client_end)
			counted = flow_to_tcp(&peer_key, reason, bpf_ktime_get_ns());
		if (!counted && (client_end || reason != SHUNT_TCP_PEER_MISSING))
			tcp_reason_count(reason);
		if (f && !f->tcp_reason)
			f->tcp_reason = reason;
		return;
	}

	err = bpf_sock_hash_update(skops, &shunt_sockhash_v1, key, BPF_NOEXIST);
	if (err) {
		/* Full or racing: the socket simply stays on the TCP path. */
		counter_add(SHUNT_CTR_SOCK_INSERT_FAILED, 1);
		if (!client_end)
			flow_to_tcp(&peer_key, SHUNT_TCP_PEER_MISSING, bpf_ktime_get_ns());
		return;
	}
	remember_sock(key, skops);
	/* Be told when it closes, to forget it (flow_open may have asked
	 * already), and when TCP acks its data, to leave the sockhash once its
	 * flow took TCP for good (try_release). */
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG |
						 BPF_SOCK_OPS_RTT_CB_FLAG);
	if (f)
		__sync_fetch_and_or(&f->flags, client_end ? SHUNT_FLOW_F_SC_CLIENT : SHUNT_FLOW_F_SC_SERVER);
	counter_add(SHUNT_CTR_SOCK_SHORT_CIRCUITED, 1);
}

/* How long a send that chose to redirect before its flow was marked may
 * still be on its way into the peer's queue, at most: the redirect is
 * enqueued within the sendmsg call that chose it (microseconds; this
 * leaves room for preemption). An end that confirmed it sends by TCP
 * (SHUNT_REF_F_TX_DONE) has nothing on its way. */
#define SHUNT_RELEASE_SETTLE_NS (20 * 1000 * 1000ull)

/* Takes one end out of the sockhash, noting TCP's counts of what it sent so
 * far (its flow record counts later sends from them). */
static __always_inline void release(struct shunt_sock_key *key, struct shunt_sock_ref *ref,
				    struct sock *sk)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;

	ref->acked_at_release = BPF_CORE_READ(tp, bytes_acked);
	ref->segs_out_at_release = BPF_CORE_READ(tp, data_segs_out);
	if (bpf_map_delete_elem(&shunt_sockhash_v1, key) == 0) {
		__sync_fetch_and_or(&ref->flags, SHUNT_REF_F_RELEASED);
		counter_add(SHUNT_CTR_SOCK_RELEASED, 1);
	}
}

/* A flow that took TCP for good leaves the sockhash, both ends at once, as
 * soon as nothing redirected is left unread on either side and nothing can
 * be redirected any more (both ends confirmed they send by TCP, or long
 * enough passed): the kernel then serves its sockets as plain TCP sockets
 * (FIONREAD, urgent data, zero-copy...). Called when TCP acks data of an
 * end (the RTT callback): a flow on TCP sends data, a short-circuited one
 * never, and connections that send nothing pay nothing. */
static __always_inline void try_release(struct shunt_sock_key *key, __u64 now)
{
	struct shunt_sock_ref *ref = bpf_map_lookup_elem(&shunt_sockref_v2, key);
	struct shunt_sock_key peer_key = {};
	struct shunt_sock_ref *peer;
	struct sock *sk, *peer_sk;
	__u32 both;

	if (!ref || (ref->flags & (SHUNT_REF_F_TCP | SHUNT_REF_F_RELEASED)) != SHUNT_REF_F_TCP)
		return;
	sk = sock_of_ref(ref);
	if (!sk || psock_queued(sk))
		return;
	sock_key_swap(key, &peer_key);
	peer = bpf_map_lookup_elem(&shunt_sockref_v2, &peer_key);
	peer_sk = sock_of_ref(peer);
	if (peer_sk) {
		if (psock_queued(peer_sk))
			return;
		both = ref->flags & peer->flags;
		if (!(both & SHUNT_REF_F_TX_DONE) && now - ref->tcp_since_ns < SHUNT_RELEASE_SETTLE_NS)
			return;
		if (!(peer->flags & SHUNT_REF_F_RELEASED))
			release(&peer_key, peer, peer_sk);
	}
	release(key, ref, sk);
}

/* A pod socket connect4 handed to the proxy, now connected: its
 * destination is filed under its own address:port, where the proxy's
 * getsockopt(SO_ORIGINAL_DST) finds it, until the socket closes. */
static __always_inline void mtls_file(struct bpf_sock_ops *skops, const struct shunt_sock_key *key)
{
	struct shunt_mtls_addr own = {.ip4 = key->local_ip4, .port = key->local_port};
	struct bpf_sock *sk = skops->sk;
	struct shunt_mtls_dst *orig;
	struct shunt_mtls_addr to = {};

	if (!sk)
		return;
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, sk, 0, 0);
	if (!orig || orig->family != SHUNT_AF_INET)
		return;
	to.ip4 = orig->ip4;
	to.port = orig->port;
	to.flags = orig->flags;
	bpf_map_update_elem(&shunt_mtls_orig_v1, &own, &to, BPF_ANY);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

/* The same for a native IPv6 socket (which has no sockhash key): filed
 * when established, forgotten when closed. */
static __always_inline void mtls_file6(struct bpf_sock_ops *skops, __u32 op)
{
	struct bpf_sock *sk = skops->sk;
	struct shunt_mtls_addr6 own = {}, to = {};
	struct shunt_mtls_dst *orig;
	__u32 w0 = skops->local_ip6[0], w1 = skops->local_ip6[1], w2 = skops->local_ip6[2],
	      w3 = skops->local_ip6[3], lport = skops->local_port;

	asm volatile("" : "+r"(w0), "+r"(w1), "+r"(w2), "+r"(w3), "+r"(lport));
	if (!sk)
		return;
	orig = bpf_sk_storage_get(&shunt_mtls_sk_v1, sk, 0, 0);
	if (!orig || orig->family != SHUNT_AF_INET6)
		return;
	own.ip6[0] = w0;
	own.ip6[1] = w1;
	own.ip6[2] = w2;
	own.ip6[3] = w3;
	own.port = bpf_htons((__u16)lport);
	if (op == BPF_SOCK_OPS_STATE_CB) {
		bpf_map_delete_elem(&shunt_mtls_orig6_v1, &own);
		return;
	}
	__builtin_memcpy(to.ip6, orig->ip6, sizeof(to.ip6));
	to.port = orig->port;
	to.flags = orig->flags;
	bpf_map_update_elem(&shunt_mtls_orig6_v1, &own, &to, BPF_ANY);
	bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_STATE_CB_FLAG);
}

static __always_inline void mtls_forget(struct bpf_sock_ops *skops,
					const struct shunt_sock_key *key)
{
	struct shunt_mtls_addr own = {.ip4 = key->local_ip4, .port = key->local_port};
	struct bpf_sock *sk = skops->sk;

	/* With telemetry, the flow record's last close removes it (the proxy's
	 * end still needs it to find the record). */
	if (sk && bpf_sk_storage_get(&shunt_mtls_sk_v1, sk, 0, 0) && !telemetry_on())
		bpf_map_delete_elem(&shunt_mtls_orig_v1, &own);
}

SEC("sockops")
int shunt_sockops(struct bpf_sock_ops *skops)
{
	struct shunt_sock_key key = {};
	struct shunt_endpoint *ep;
	struct shunt_flow *f = NULL;
	__u32 op = skops->op;
	__u64 now;

	/* Most calls are for ops and state changes we do not use: leave before
	 * reading anything else (this runs about a dozen times per connection). */
	if (op == BPF_SOCK_OPS_STATE_CB) {
		if (skops->args[1] != BPF_TCP_CLOSE)
			return 1;
	} else if (op != BPF_SOCK_OPS_TCP_CONNECT_CB && op != BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB &&
		   op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB && op != BPF_SOCK_OPS_RTT_CB) {
		return 1;
	}
	if (!sock_key_of(skops, &key)) {
		/* Real IPv6: left to the kernel in this version, but for the
		 * hand-off to the proxy (mTLS). */
		if (op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || op == BPF_SOCK_OPS_STATE_CB)
			mtls_file6(skops, op);
		return 1;
	}
	now = bpf_ktime_get_ns();
	switch (op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		ep = pod_of(skops);
		if (on_pod_ip(ep, &key) && telemetry_on()) {
			mtls_file(skops, &key); /* first: the record goes under the real destination */
			flow_open(skops, &key, ep, true, now);
		} else if (!ep && telemetry_on()) {
			flow_open_proxy(skops, &key, now);
		}
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		ep = pod_of(skops);
		f = flow_established(&key, now);
		maybe_short_circuit(skops, &key, ep, f, true);
		mtls_file(skops, &key);
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		ep = pod_of(skops);
		if (on_pod_ip(ep, &key) && telemetry_on())
			f = flow_open(skops, &key, ep, false, now);
		else if (!ep && telemetry_on())
			f = flow_join_proxy_leg(skops, &key);
		maybe_short_circuit(skops, &key, ep, f, false);
		break;
	case BPF_SOCK_OPS_RTT_CB:
		try_release(&key, now);
		break;
	case BPF_SOCK_OPS_STATE_CB:
		flow_close(skops, &key, skops->args[0], now); /* reads the record first */
		forget_sock(&key);
		mtls_forget(skops, &key);
		break;
	}
	return 1;
}

/* The flow record of a sending socket. Which end it is (client or server)
 * is learned on its first send and kept in its socket storage, so later
 * sends cost one lookup; a socket without a record (telemetry off, or
 * evicted) stops looking. */
static __always_inline struct shunt_flow *flow_of_sender(struct shunt_sock_state *st,
							 const struct shunt_sock_key *self,
							 bool *client_end)
{
	struct shunt_flow_key k = {};
	struct shunt_flow *f;

	if (st->flags & SHUNT_SOCK_F_NO_FLOW)
		return NULL;
	if (!(st->flags & (SHUNT_SOCK_F_FLOW_CLIENT | SHUNT_SOCK_F_FLOW_SERVER))) {
		f = telemetry_on() ? flow_lookup(self->local_ip4, self->remote_ip4, self->local_port,
						 self->remote_port, client_end)
				   : NULL;
		st->flags |= !f ? SHUNT_SOCK_F_NO_FLOW
			      : *client_end ? SHUNT_SOCK_F_FLOW_CLIENT : SHUNT_SOCK_F_FLOW_SERVER;
		/* Later sends look the mTLS config up only for such legs. */
		if (f && (f->flags & SHUNT_FLOW_F_HANDED_OFF) &&
		    !(f->flags & SHUNT_FLOW_F_MTLS_INBOUND))
			st->flags |= SHUNT_SOCK_F_MTLS_LEG;
		return f;
	}
	*client_end = st->flags & SHUNT_SOCK_F_FLOW_CLIENT;
	flow_key_of_addrs(self, *client_end, &k);
	if (st->flags & SHUNT_SOCK_F_MTLS_LEG)
		flow_key_unproxy(&k);
	f = bpf_map_lookup_elem(&shunt_flows_v3, &k);
	if (!f)
		st->flags |= SHUNT_SOCK_F_NO_FLOW; /* evicted: nothing to count into */
	return f;
}

/* Why the flow record says it is on TCP: a lasting reason (an end opted
 * out, ...) is kept over what follows from it (the peer is missing). */
static __always_inline void flow_tcp_reason(struct shunt_flow *flow, __u8 reason)
{
	__u8 was;

	if (!flow)
		return;
	was = flow->tcp_reason;
	if (was == SHUNT_TCP_NONE || was == SHUNT_TCP_NO_PLAIN_READ || was == SHUNT_TCP_SLOW_READER)
		flow->tcp_reason = reason;
}

static __always_inline int stay_tcp(void)
{
	counter_add(SHUNT_CTR_MSG_STAY_TCP, 1);
	return SK_PASS;
}

/* The peer's record says the flow takes TCP for good: this end does so now
 * (for a reader that skips the psock queue, nothing redirected is left
 * unread by now), and says in its own record that it will never redirect
 * again, so the release iterator may take the peer out of the sockhash. */
static __always_inline int leave_for_tcp(struct shunt_sock_state *st, struct shunt_sock_key *self,
					 const struct shunt_sock_ref *peer_ref, struct shunt_flow *flow)
{
	struct shunt_sock_ref *own = bpf_map_lookup_elem(&shunt_sockref_v2, self);

	st->flags |= SHUNT_SOCK_F_TCP_FOREVER;
	if (own)
		__sync_fetch_and_or(&own->flags, SHUNT_REF_F_TX_DONE);
	if (flow)
		flow->tcp_reason = peer_ref->reason;
	return stay_tcp();
}

SEC("sk_msg")
int shunt_sk_msg(struct sk_msg_md *msg)
{
	__u32 remote_ip6[4] = {msg->remote_ip6[0], msg->remote_ip6[1], msg->remote_ip6[2],
			       msg->remote_ip6[3]};
	__u32 local_ip6[4] = {msg->local_ip6[0], msg->local_ip6[1], msg->local_ip6[2],
			      msg->local_ip6[3]};
	struct shunt_sock_key peer = {}, self = {};
	struct shunt_sock_ref *ref;
	struct shunt_sock_state *st;
	struct shunt_flow *flow;
	bool client_end;
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
	/* Every send is counted, whichever way it then goes. */
	flow = flow_of_sender(st, &self, &client_end);
	if (flow) {
		/* Each end counts its own sends (serialized by its socket lock):
		 * bytes[i] and msgs[i] have one writer each, and only the server
		 * end closes a request/response sample. Both ends write
		 * last_dir, a hint: two sends crossing can lose or misplace one
		 * sample, never corrupt a count. No atomics on the hot path. */
		if (client_end) {
			flow->bytes[0] += size;
			flow->msgs[0] += 1;
		} else {
			flow->bytes[1] += size;
			flow->msgs[1] += 1;
		}
		flow_data(flow, client_end, bpf_ktime_get_ns());
	}

	/* A flow that took TCP for good, or whose peer never made it into the
	 * sockhash, stays there: redirecting could overtake its TCP bytes. */
	if (st->flags & (SHUNT_SOCK_F_PEER_MISSING | SHUNT_SOCK_F_TCP_FOREVER))
		return stay_tcp();
	ref = bpf_map_lookup_elem(&shunt_sockref_v2, &peer);
	if (!ref) {
		/* A peer that could not join (opted out, an option set) said
		 * why in this end's record: already counted, once per flow. */
		ref = bpf_map_lookup_elem(&shunt_sockref_v2, &self);
		if (ref && (ref->flags & SHUNT_REF_F_TCP))
			return leave_for_tcp(st, &self, ref, flow);
		/* Never recorded, or evicted: how it reads is unknown. */
		st->flags |= SHUNT_SOCK_F_PEER_MISSING;
		flow_tcp_reason(flow, SHUNT_TCP_PEER_MISSING);
		counter_add(SHUNT_CTR_MSG_PEER_MISS, 1);
		tcp_reason_count(SHUNT_TCP_PEER_MISSING);
		return SK_PASS;
	}
	if (ref->flags & SHUNT_REF_F_TCP) {
		/* For a reader that skips the psock queue, what we redirected
		 * must be read first (it is sent back to recvmsg meanwhile). */
		if (reason_drains_first(ref->reason) && psock_queued(sock_of_ref(ref)))
			goto redirect;
		return leave_for_tcp(st, &self, ref, flow);
	}
	if (!(ref->flags & SHUNT_REF_F_READS)) {
		/* The peer has not read yet: its first read may be a splice, a
		 * MSG_WAITALL or a zero-copy receive, which the psock queue
		 * cannot serve. TCP until it reads with a plain recvmsg. */
		st->flags &= ~SHUNT_SOCK_F_IN_ORDER;
		if (flow && !flow->tcp_reason)
			flow->tcp_reason = SHUNT_TCP_NO_PLAIN_READ;
		counter_add(SHUNT_CTR_MSG_AWAIT_READER, 1);
		return SK_PASS;
	}
	/* Bytes that went by TCP (before the peer read, over the budget, in a
	 * Fast Open SYN) must all be read before redirected ones can follow. */
	if (!(st->flags & SHUNT_SOCK_F_IN_ORDER)) {
		if (!drained(&self, ref))
			return stay_tcp();
		st->flags |= SHUNT_SOCK_F_IN_ORDER;
		if (st->flags & SHUNT_SOCK_F_SLOW_READER) {
			st->flags &= ~SHUNT_SOCK_F_SLOW_READER;
			counter_add(SHUNT_CTR_FLOW_RESUMED, 1);
		}
	}
	/* Reading the peer's queue costs three kernel reads, so it is done
	 * once per 1/16 of the budget sent: a stuck reader ends up holding at
	 * most 17/16 of the budget, and small request/response messages
	 * almost never pay for the check. */
	st->unchecked_bytes += size;
	if (st->unchecked_bytes >= (max_queued_bytes >> 4)) {
		__u32 sent = st->unchecked_bytes;

		st->unchecked_bytes = 0;
		if (over_budget(ref, st, sent)) {
			st->flags = (st->flags | SHUNT_SOCK_F_SLOW_READER) & ~SHUNT_SOCK_F_IN_ORDER;
			if (flow)
				flow->tcp_reason = SHUNT_TCP_SLOW_READER;
			counter_add(SHUNT_CTR_FLOW_BACKPRESSURE, 1);
			tcp_reason_count(SHUNT_TCP_SLOW_READER);
			return SK_PASS;
		}
	}
	/* An urgent byte must arrive out of band, with SIGURG: TCP carries
	 * it, after what was redirected, and the flow stays on TCP. */
	if (current_send_flags() & SHUNT_MSG_OOB) {
		flow_to_tcp(&self, SHUNT_TCP_URGENT, bpf_ktime_get_ns());
		return leave_for_tcp(st, &self, ref, flow);
	}
redirect:
	if (bpf_msg_redirect_hash(msg, &shunt_sockhash_v1, &peer, BPF_F_INGRESS) == SK_PASS) {
		/* What held the flow on TCP for a while is over. */
		if (flow && (flow->tcp_reason == SHUNT_TCP_NO_PLAIN_READ ||
			     flow->tcp_reason == SHUNT_TCP_SLOW_READER))
			flow->tcp_reason = SHUNT_TCP_NONE;
		counter_add(SHUNT_CTR_MSG_REDIRECTED, 1);
		counter_add(SHUNT_CTR_BYTES_REDIRECTED, size);
		return SK_PASS;
	}
	flow_tcp_reason(flow, SHUNT_TCP_PEER_MISSING);
	st->flags |= SHUNT_SOCK_F_PEER_MISSING;
	counter_add(SHUNT_CTR_MSG_PEER_MISS, 1);
	tcp_reason_count(SHUNT_TCP_PEER_MISSING);
	return SK_PASS;
}
