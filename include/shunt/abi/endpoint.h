/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local pods (keyed by network-namespace cookie) and the cluster-wide
 * IP -> identity cache. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MAX_ENDPOINTS 4096
#define SHUNT_MAX_IPCACHE 65536

/* shunt_endpoint.flags */
#define SHUNT_EP_F_SHORT_CIRCUIT (1u << 0) /* sockets of this pod may be short-circuited */

/* endpoints: key = __u64 netns cookie (bpf_get_netns_cookie / SO_NETNS_COOKIE). */
struct shunt_endpoint {
	__be32 ip4;       /* the pod's own address; sockets bound elsewhere are left alone */
	__u32 identity;   /* (namespace, serviceaccount) number, node-local */
	__u32 flags;      /* SHUNT_EP_F_* */
	__u32 pad;
	struct shunt_ip6 ip6; /* its IPv6 address on a dual-stack cluster, else zero */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_endpoint, 32);

/* Names for an endpoint, written by the agent and read by shuntctl only, so
 * the CLI can show pods while the agent is down. Never read by BPF. */
#define SHUNT_NAME_LEN 64
#define SHUNT_POD_NAME_LEN 256
struct shunt_endpoint_meta {
	char namespace_[SHUNT_NAME_LEN];
	char name[SHUNT_POD_NAME_LEN];
	char service_account[SHUNT_NAME_LEN];
	__u64 netns_inode;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_endpoint_meta, 392);

/* ipcache: key = __be32 IPv4 address; ipcache6: key = struct shunt_ip6
 * (the IPv6 addresses of status.podIPs), the same values. */
#define SHUNT_IPC_F_LOCAL (1u << 0) /* a pod on this node */
struct shunt_ipcache_entry {
	__u32 identity;
	__u32 flags; /* SHUNT_IPC_F_* */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_ipcache_entry, 8);
