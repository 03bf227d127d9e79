/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Flow records: opening, request/response timing, closing. Used by sockops
 * (lifecycle, TCP statistics), sk_msg (bytes and timing on the
 * short-circuit) and TC (timing on the TCP path). */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "flow_maps.bpf.h"
#include "policy_maps.bpf.h"
#include "counters.bpf.h"
#include "mtls_maps.bpf.h"

static __always_inline bool telemetry_on(void)
{
	__u32 zero = 0;
	struct shunt_config *cfg = bpf_map_lookup_elem(&shunt_config_v1, &zero);

	return !cfg || !(cfg->flags & SHUNT_CONFIG_F_NO_TELEMETRY);
}

/* Off when the agent could not install the socket watch (sock_watch.bpf.c):
 * without it the short-circuit would change what applications see. */
static __always_inline bool short_circuit_on(void)
{
	__u32 zero = 0;
	struct shunt_config *cfg = bpf_map_lookup_elem(&shunt_config_v1, &zero);

	return cfg && !(cfg->flags & SHUNT_CONFIG_F_NO_SHORT_CIRCUIT);
}

/* Zeroed values to insert from (a histogram does not fit the BPF stack). */
static const struct shunt_flow shunt_zero_flow;
static const struct shunt_flow_hist shunt_zero_hist;

/* A pod's connection handed to the node's proxy (its mTLS or L7 port) is
 * recorded under the destination the pod asked for, not the proxy's
 * address: seen from the pod's socket (server = the proxy) or the proxy's
 * (client = the pod), the key is rewritten to it. True when it was. */
static __always_inline bool flow_key_unproxy(struct shunt_flow_key *k)
{
	struct shunt_mtls_config *m;
	struct shunt_mtls_addr pod = {};
	struct shunt_mtls_addr *to;
	__u32 zero = 0;

	m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);
	if (!m || !m->proxy_ip4 || k->server_ip4 != m->proxy_ip4 ||
	    (k->server_port != m->proxy_port && (!m->l7_port || k->server_port != m->l7_port)))
		return false;
	pod.ip4 = k->client_ip4;
	pod.port = k->client_port;
	to = bpf_map_lookup_elem(&shunt_mtls_orig_v1, &pod);
	if (!to)
		return false;
	k->server_ip4 = to->ip4;
	k->server_port = to->port;
	return true;
}

/* The record of a connection seen from one of its ends (local/remote
 * addresses and ports as that socket or packet has them): first as the
 * client end, then as the server end. *to_server tells which matched. */
static __always_inline struct shunt_flow *flow_lookup(__be32 local_ip, __be32 remote_ip,
						      __be16 local_port, __be16 remote_port,
						      bool *client_end)
{
	struct shunt_flow_key k = {
		.client_ip4 = local_ip, .server_ip4 = remote_ip,
		.client_port = local_port, .server_port = remote_port,
	};
	struct shunt_flow *f;

	flow_key_unproxy(&k);
	f = bpf_map_lookup_elem(&shunt_flows_v3, &k);
	if (f) {
		*client_end = true;
		return f;
	}
	k.client_ip4 = remote_ip;
	k.server_ip4 = local_ip;
	k.client_port = remote_port;
	k.server_port = local_port;
	flow_key_unproxy(&k);
	*client_end = false;
	return bpf_map_lookup_elem(&shunt_flows_v3, &k);
}

/* The histogram of `f`, made at its first response sample. The map is an
 * LRU as large as the records' (an insert evicts rather than fails), so NULL
 * is not expected; the sample would still count in rr_sum/rr_count. */
static __always_inline struct shunt_flow_hist *flow_hist_of(struct shunt_flow *f)
{
	struct shunt_flow_hist *h = bpf_map_lookup_elem(&shunt_flow_hists_v1, &f->key);

	if (h && h->start_ns == f->start_ns)
		return h;
	/* None yet, or one an evicted record left behind on this 4-tuple. */
	if (bpf_map_update_elem(&shunt_flow_hists_v1, &f->key, &shunt_zero_hist, BPF_ANY))
		return NULL;
	h = bpf_map_lookup_elem(&shunt_flow_hists_v1, &f->key);
	if (h)
		h->start_ns = f->start_ns;
	return h;
}

/* Request/response timing: a request is a run of bytes towards the server,
 * its response the first bytes back; the time from the start of the request
 * to the start of the response is one sample. Protocols where the server
 * speaks first simply give no sample for the greeting. Plain adds: a sample
 * is only ever closed by the server end's sends (sk_msg: serialized by its
 * socket lock) or by its segments at one TC hook, never by two at once. */
static __always_inline void flow_data(struct shunt_flow *f, bool to_server, __u64 now)
{
	struct shunt_flow_hist *h;

	if (to_server) {
		if (f->last_dir != SHUNT_FLOW_DIR_TO_SERVER) {
			f->req_start_ns = now;
			f->last_dir = SHUNT_FLOW_DIR_TO_SERVER;
		}
		return;
	}
	if (f->last_dir == SHUNT_FLOW_DIR_TO_SERVER && now > f->req_start_ns) {
		__u64 d = now - f->req_start_ns;
		__u32 b = shunt_hist_bucket(d);

		h = flow_hist_of(f);
		if (h && b < SHUNT_HIST_BUCKETS)
			h->rr_hist[b] += 1;
		f->rr_sum_ns += d;
		f->rr_count += 1;
	}
	f->last_dir = SHUNT_FLOW_DIR_TO_CLIENT;
}

/* Wake the agent only once this much is waiting: a wake-up per record is
 * an inter-processor interrupt inside the closing socket's sockops run
 * (measured: ~10 us per connection on a VM, 3x the rest of the record's
 * cost). The agent also looks every 10 ms, so records are never later than
 * that. */
#define SHUNT_FLOW_RING_WAKE_BYTES (512 * 1024)

/* Hands a finished record to the agent and forgets it: the record alone
 * (two cache lines into the ring) when it had no response sample, else with
 * its histogram. */
static __always_inline void flow_finish(struct shunt_flow *f, const struct shunt_flow_key *k,
					__u64 now)
{
	__u64 wake = bpf_ringbuf_query(&shunt_flow_events_v3, BPF_RB_AVAIL_DATA) >= SHUNT_FLOW_RING_WAKE_BYTES
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;
	struct shunt_flow_hist *h = NULL;
	struct shunt_flow_event *ev;
	long err = 0;

	f->end_ns = now;
	if (f->rr_count) {
		h = bpf_map_lookup_elem(&shunt_flow_hists_v1, k);
		if (h && h->start_ns != f->start_ns)
			h = NULL;
	}
	if (h) {
		ev = bpf_ringbuf_reserve(&shunt_flow_events_v3, sizeof(*ev), 0);
		if (ev) {
			__builtin_memcpy(&ev->flow, f, sizeof(ev->flow));
			__builtin_memcpy(ev->rr_hist, h->rr_hist, sizeof(ev->rr_hist));
			bpf_ringbuf_submit(ev, wake);
		} else {
			err = -1;
		}
		bpf_map_delete_elem(&shunt_flow_hists_v1, k);
	} else {
		err = bpf_ringbuf_output(&shunt_flow_events_v3, f, sizeof(*f), wake);
	}
	if (err)
		counter_add(SHUNT_CTR_FLOW_EVENTS_LOST, 1);
	else
		counter_add(SHUNT_CTR_FLOWS_ENDED, 1);
	bpf_map_delete_elem(&shunt_flows_v3, k);
}
