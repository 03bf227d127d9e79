/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-interface facts for the TC programs on the node side of each local
 * pod's veth: key = __u32 ifindex (in the agent's network namespace). */
#pragma once
#include "shunt/abi/common.h"

struct shunt_tc_endpoint {
	__be32 ip4;      /* the only source address the pod may use */
	__u32 identity;  /* the pod's identity, the destination of inbound policy */
	struct shunt_ip6 ip6; /* the only global IPv6 source it may use; zero: none */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_tc_endpoint, 24);

/* The cluster's pod address ranges (the agent's --pod-cidrs), an LPM trie:
 * a packet from an address in them that no known pod holds comes from a
 * pod the agent has not learned yet, and is judged as identity
 * SHUNT_IDENTITY_UNKNOWN_POD, which no TrafficTarget grants. IPv4 ranges
 * are stored v4-mapped (::ffff:a.b.c.d, prefix length + 96). */
#define SHUNT_MAX_POD_CIDRS 64
struct shunt_cidr_key {
	__u32 prefixlen;
	struct shunt_ip6 addr;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_cidr_key, 20);
