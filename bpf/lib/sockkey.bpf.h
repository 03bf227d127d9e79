/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Building sockhash keys from sockops and sk_msg contexts. Both contexts
 * expose local_port in host order and remote_port in network order in the
 * upper 16 bits of a 32-bit load on little-endian (the kernel shifts it
 * there); a READ_ONCE-style 32-bit load keeps clang from narrowing it. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include "shunt/abi/sockmap.h"

#define SHUNT_AF_INET 2
#define SHUNT_AF_INET6 10

static __always_inline __be16 remote_port_be16(__u32 raw)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return (__be16)(raw >> 16);
#else
	return (__be16)raw;
#endif
}

/* IPv4 address of a socket end: a plain AF_INET address, or the IPv4 inside a
 * v4-mapped IPv6 address (servers on [::] accept IPv4 clients that way).
 * Returns false for real IPv6, which this version leaves to the kernel. */
static __always_inline bool ip4_of(__u32 family, __u32 ip4, const __u32 ip6[4], __be32 *out)
{
	if (family == SHUNT_AF_INET) {
		*out = ip4;
		return true;
	}
	if (family == SHUNT_AF_INET6 && ip6[0] == 0 && ip6[1] == 0 &&
	    ip6[2] == bpf_htonl(0x0000ffff)) {
		*out = ip6[3];
		return true;
	}
	return false;
}
