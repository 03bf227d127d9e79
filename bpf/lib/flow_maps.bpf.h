/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Live flows and the ring buffer that carries finished ones to the agent. */
#pragma once
#include "maps.bpf.h"
#include "shunt/abi/flow.h"

/* LRU: a flood of connections evicts the oldest records; sockets never fail
 * for want of a slot. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_FLOWS);
	__type(key, struct shunt_flow_key);
	__type(value, struct shunt_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_flows_v3 SEC(".maps");

/* Response-latency histograms, made at a flow's first response sample and
 * gone with its record; most connections never have one. LRU like the
 * records, and as large. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_FLOWS);
	__type(key, struct shunt_flow_key);
	__type(value, struct shunt_flow_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_flow_hists_v1 SEC(".maps");

/* Its own ring, so a burst of closing flows never crowds out policy
 * denials (shunt_events_v1). 8 MiB holds about 60,000 records without a
 * histogram, 9,000 with one. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_flow_events_v3 SEC(".maps");
