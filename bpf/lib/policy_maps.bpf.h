/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of SMI identity policy. */
#pragma once
#include "maps.bpf.h"
#include "shunt/abi/policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_POLICY);
	__type(key, struct shunt_policy_key);
	__type(value, struct shunt_policy_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_policy_v1 SEC(".maps");

/* Userspace only: names for shuntctl. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_RULES);
	__type(key, __u32);
	__type(value, struct shunt_rule_meta);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_rule_meta_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_IDENTITIES);
	__type(key, __u32);
	__type(value, struct shunt_identity_meta);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_id_meta_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_config_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_EVENT_BUDGETS);
	__type(key, __u32);
	__type(value, struct shunt_udp_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_event_budget_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_events_v1 SEC(".maps");
