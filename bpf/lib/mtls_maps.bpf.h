/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The hand-off of cross-node connections to the node's proxy (mTLS). */
#pragma once
#include "maps.bpf.h"
#include "shunt/abi/mtls.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shunt_mtls_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_mtls_config_v1 SEC(".maps");

/* connect4 -> sockops: where a handed-off socket was going. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct shunt_mtls_dst);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_mtls_sk_v1 SEC(".maps");

/* sockops -> getsockopt: the pod socket's address:port (the proxy's
 * accepted socket's peer) -> where it was going. Deleted when the pod
 * socket closes; LRU so a full map never refuses a new hand-off. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_MTLS_HANDOFFS);
	__type(key, struct shunt_mtls_addr);
	__type(value, struct shunt_mtls_addr);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_mtls_orig_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_MTLS_HANDOFFS);
	__type(key, struct shunt_mtls_addr6);
	__type(value, struct shunt_mtls_addr6);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_mtls_orig6_v1 SEC(".maps");

#define SHUNT_AF_INET 2
#define SHUNT_AF_INET6 10
