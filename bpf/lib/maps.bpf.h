/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps every object uses, defined once. Objects that include this share the
 * pins (LIBBPF_PIN_BY_NAME under the agent's bpffs directory). */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "shunt/abi/common.h"
#include "shunt/abi/counters.h"
#include "shunt/abi/endpoint.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_meta_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_ENDPOINTS);
	__type(key, __u64);
	__type(value, struct shunt_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_endpoints_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_ENDPOINTS);
	__type(key, __u64);
	__type(value, struct shunt_endpoint_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_ep_meta_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_IPCACHE);
	__type(key, __be32);
	__type(value, struct shunt_ipcache_entry);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_ipcache_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_IPCACHE);
	__type(key, struct shunt_ip6);
	__type(value, struct shunt_ipcache_entry);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_ipcache6_v1 SEC(".maps");

/* True when a and b are the same IPv6 address. */
static __always_inline bool ip6_equal(const struct shunt_ip6 *a, const struct shunt_ip6 *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline bool ip6_is_zero(const struct shunt_ip6 *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHUNT_COUNTER_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_counters_v2 SEC(".maps");

