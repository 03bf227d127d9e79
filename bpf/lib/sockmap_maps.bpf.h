/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps of the same-node short-circuit. */
#pragma once
#include "maps.bpf.h"
#include "shunt/abi/sockmap.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SHUNT_MAX_SOCKETS);
	__type(key, struct shunt_sock_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_sockhash_v1 SEC(".maps");

/* LRU: a flow whose peer's entry is lost takes TCP at its next send
 * (sk_msg redirects only toward a peer whose record says it reads). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_SOCKETS);
	__type(key, struct shunt_sock_key);
	__type(value, struct shunt_sock_ref);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_sockref_v2 SEC(".maps");

/* Flows kept off or moved off the short-circuit, by enum shunt_tcp_reason. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHUNT_TCP_REASON_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_tcp_reasons_v1 SEC(".maps");


/* Socket-local storage is not pinned: it lives and dies with each socket. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shunt_sock_state);
} shunt_sock_state SEC(".maps");
