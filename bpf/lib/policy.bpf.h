/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Policy lookup and denial events, shared by the socket and packet hooks. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "policy_maps.bpf.h"
#include "counters.bpf.h"

#define SHUNT_IPPROTO_TCP 6
#define SHUNT_IPPROTO_UDP 17

/* The verdict for src -> dst on dport/proto: an exact-port entry first, then
 * the any-port entry; no entry is a denial (0). */
static __always_inline __u8 policy_verdict(__u32 src, __u32 dst, __be16 dport, __u8 proto,
					   __u32 *rule_id)
{
	struct shunt_policy_key key = {
		.src_identity = src, .dst_identity = dst, .dport = dport, .proto = proto,
	};
	struct shunt_policy_value *v = bpf_map_lookup_elem(&shunt_policy_v1, &key);

	if (!v) {
		key.dport = 0;
		v = bpf_map_lookup_elem(&shunt_policy_v1, &key);
	}
	if (!v)
		return 0;
	*rule_id = v->rule_id;
	return v->verdict;
}

static __always_inline bool policy_enforced(void)
{
	__u32 zero = 0;
	struct shunt_config *cfg = bpf_map_lookup_elem(&shunt_config_v1, &zero);

	return cfg && cfg->mode == SHUNT_MODE_ENFORCE;
}

/* Wake the agent only once this much is waiting: a wake-up per event is an
 * inter-processor interrupt inside connect() (measured: a third of a
 * connect()'s cost in permissive mode, where every unpermitted connection
 * is reported). The agent looks every 20 ms anyway. */
#define SHUNT_EVENT_RING_WAKE_BYTES (64 * 1024)

/* True when `identity` may send one more denial event this second. A
 * missing record that cannot be made counts as over. */
static __always_inline bool event_budget_take(__u32 identity, __u64 now)
{
	struct shunt_udp_budget *b = bpf_map_lookup_elem(&shunt_event_budget_v1, &identity);
	struct shunt_udp_budget fresh = {.window_start_ns = now, .opened = 1};

	if (!b)
		return bpf_map_update_elem(&shunt_event_budget_v1, &identity, &fresh, BPF_NOEXIST) == 0;
	if (now - b->window_start_ns >= 1000000000ull) {
		b->window_start_ns = now;
		b->opened = 0;
	}
	if (b->opened >= SHUNT_EVENTS_PER_IDENTITY_PER_S)
		return false;
	__sync_fetch_and_add(&b->opened, 1);
	return true;
}

/* Sends a denial record: `ev` starts a record of `size` bytes (a
 * shunt_deny_event, or the base of a shunt_deny_event6). */
static __always_inline void emit_denial_record(struct shunt_deny_event *ev, __u32 size)
{
	__u64 wake = bpf_ringbuf_query(&shunt_events_v1, BPF_RB_AVAIL_DATA) >= SHUNT_EVENT_RING_WAKE_BYTES
			     ? BPF_RB_FORCE_WAKEUP
			     : BPF_RB_NO_WAKEUP;

	ev->ts_ns = bpf_ktime_get_ns();
	if (!event_budget_take(ev->src_identity, ev->ts_ns)) {
		counter_add(SHUNT_CTR_EVENTS_RATE_LIMITED, 1);
		return;
	}
	if (bpf_ringbuf_output(&shunt_events_v1, ev, size, wake))
		counter_add(SHUNT_CTR_EVENTS_LOST, 1);
}

static __always_inline void emit_denial(struct shunt_deny_event *ev)
{
	emit_denial_record(ev, sizeof(*ev));
}

static __always_inline void emit_denial6(struct shunt_deny_event6 *ev)
{
	emit_denial_record(&ev->base, sizeof(*ev));
}
