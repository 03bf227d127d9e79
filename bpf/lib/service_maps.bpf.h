/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Services and their backend slot tables. */
#pragma once
#include "maps.bpf.h"
#include "shunt/abi/service.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_SERVICES);
	__type(key, struct shunt_svc_key);
	__type(value, struct shunt_svc_value);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_services_v2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_SLOTS);
	__type(key, struct shunt_slot_key);
	__type(value, struct shunt_backend);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_slots_v1 SEC(".maps");

/* LRU: a socket that stops talking ages out; a reply then shows the pod's
 * address, never an error. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_REVNAT);
	__type(key, struct shunt_revnat_key);
	__type(value, struct shunt_svc_origin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_udp_revnat_v1 SEC(".maps");

/* Per socket: the service address it connected to. Pinned, so sockets made
 * before an agent restart still answer getpeername() with it. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shunt_svc_origin);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_svc_origin_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHUNT_MAX_LB_BACKENDS);
	__type(key, struct shunt_backend);
	__type(value, struct shunt_lb_score);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_lb_scores_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_lb_trace);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_lb_trace_v1 SEC(".maps");
