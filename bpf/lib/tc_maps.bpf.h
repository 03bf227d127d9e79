/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once
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
