// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* Benchmark only: floods a ring buffer with finished-flow records, as the
 * data path emits them, so the agent's collector can be measured at rates no
 * 2-core VM could open real connections at. Run with BPF_PROG_RUN. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "shunt/abi/flow.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The size of the data path's shunt_flow_events_v3. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
} flood_ring SEC(".maps");

/* The record to send, set by userspace; only the client varies. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_flow_event);
} flood_template SEC(".maps");

__u64 produced = 0;
__u64 dropped = 0; /* the ring was full: what the data path counts as lost */

struct flood_args {
	__u32 count;    /* records to send in this run */
	__u32 clients;  /* distinct client addresses to cycle through */
	__u64 seq;      /* first sequence number (client port, client choice) */
	__u32 base_ip;  /* first client address, host order */
	__u32 pad;
};

struct loop_ctx {
	__u64 seq;
	__u32 clients;
	__u32 base_ip;
};

static long emit(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	__u32 zero = 0;
	struct shunt_flow_event *t = bpf_map_lookup_elem(&flood_template, &zero);
	__u64 n = c->seq + i;

	if (!t)
		return 1;
	t->flow.key.client_port = bpf_htons((__u16)(1024 + n % 60000));
	t->flow.key.client_ip4 = bpf_htonl(c->base_ip + (__u32)(n % (c->clients ? c->clients : 1)));
	/* Wake-ups as the data path does them (bpf/lib/flow.bpf.h). */
	__u64 wake = bpf_ringbuf_query(&flood_ring, BPF_RB_AVAIL_DATA) >= 512 * 1024 ? BPF_RB_FORCE_WAKEUP
										    : BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_output(&flood_ring, t, sizeof(*t), wake))
		__sync_fetch_and_add(&dropped, 1);
	else
		__sync_fetch_and_add(&produced, 1);
	return 0;
}

SEC("syscall")
int flood(struct flood_args *args)
{
	struct loop_ctx c = {.seq = args->seq, .clients = args->clients, .base_ip = args->base_ip};

	bpf_loop(args->count, emit, &c, 0);
	return 0;
}
