/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once
#include <bpf/bpf_endian.h>
#include "maps.bpf.h"
#include "shunt/abi/tc.h"
#include "shunt/abi/policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, struct shunt_tc_endpoint);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_tc_eps_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_FRAGMENTED);
	__type(key, struct shunt_fragment_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_fragments_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_FRAGMENTED);
	__type(key, struct shunt_fragment6_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_fragments6_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, SHUNT_MAX_POD_CIDRS);
	__type(key, struct shunt_cidr_key);
	__type(value, __u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_pod_cidrs_v1 SEC(".maps");

/* True when `a` is in one of the cluster's pod ranges. */
static __always_inline bool in_pod_cidrs(const struct shunt_ip6 *a)
{
	struct shunt_cidr_key k = {.prefixlen = 128, .addr = *a};

	return bpf_map_lookup_elem(&shunt_pod_cidrs_v1, &k) != NULL;
}

static __always_inline bool in_pod_cidrs4(__be32 a)
{
	struct shunt_ip6 m = {.w = {0, 0, bpf_htonl(0x0000ffff), a}};

	return in_pod_cidrs(&m);
}
