/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Hand-off of pod connections that leave the node to the node's proxy
 * (docs/mtls.md): cgroup/connect4 and connect6 send a local pod's TCP
 * connection to a pod on another node to the proxy's outbound address
 * instead, keeping where it was going; the proxy asks with
 * getsockopt(SOL_IP, SO_ORIGINAL_DST) or (SOL_IPV6, IP6T_SO_ORIGINAL_DST),
 * answered by cgroup/getsockopt. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MTLS_OFF 0
#define SHUNT_MTLS_PERMISSIVE 1
#define SHUNT_MTLS_STRICT 2

/* SO_MARK of the proxy's sockets to local pods (the TC guards know them by
 * it), and skb->mark of the pod's replies to them (set by the from-pod
 * guard): a fwmark rule on the reply mark delivers those locally although
 * they are addressed to a remote pod (IP_TRANSPARENT). Two values: the
 * rule must not catch the proxy's own packets, whose route lookups carry
 * the socket's mark. Marks do not survive crossing into a pod's namespace,
 * so no pod can forge either. */
#define SHUNT_MTLS_PROXY_MARK 0x5348
#define SHUNT_MTLS_REPLY_MARK 0x5349

/* The single entry of shunt_mtls_config_v1, written by the agent. */
struct shunt_mtls_config {
	__u32 mode;          /* SHUNT_MTLS_*; OFF: nothing is handed off */
	__be32 proxy_ip4;    /* the proxy's outbound listener, on the node */
	__be16 proxy_port;   /* its port, for both families */
	/* The proxy's L7 listener (docs/l7.md): a connection whose grant is
	 * HTTP routes only goes there, for each request to be judged. 0: no
	 * L7 hand-off (such grants open nothing at L4). */
	__be16 l7_port;
	__u32 pad2;
	__u32 proxy_ip6[4];  /* its IPv6 address; zero: IPv6 is not handed off */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_mtls_config, 32);

/* Flags of a hand-off (shunt_mtls_dst, shunt_mtls_addr, shunt_mtls_addr6). */
/* Granted only through HTTP routes: the destination node's proxy judges
 * each request, so the connection goes through a tunnel or nowhere; the
 * permissive mode's plaintext fallback to a node without a proxy never
 * carries it (the node would see the proxy's address, not the pod's). */
#define SHUNT_MTLS_F_L7 1

/* getsockopt(SOL_IP or SOL_IPV6, SHUNT_SO_HANDOFF_FLAGS) on a socket the
 * proxy accepted from a handed-off pod: the hand-off's flags (a __u32),
 * answered by cgroup/getsockopt from the entry SO_ORIGINAL_DST reads; the
 * kernel alone answers ENOPROTOOPT. The number is no IP option's. */
#define SHUNT_SO_HANDOFF_FLAGS 0x5348

/* Socket storage connect4/6 leave for sockops and getpeername: where a
 * handed-off socket was going. */
struct shunt_mtls_dst {
	__u8 family;         /* AF_INET (2) or AF_INET6 (10) */
	__u8 flags;          /* SHUNT_MTLS_F_* */
	__be16 port;
	__be32 ip4;
	__u32 ip6[4];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_mtls_dst, 24);

/* The same as shunt_mtls_addr for IPv6 (shunt_mtls_orig6_v1). */
struct shunt_mtls_addr6 {
	__u32 ip6[4];
	__be16 port;
	__u16 flags;         /* in a value: SHUNT_MTLS_F_*; in a key: 0 */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_mtls_addr6, 20);

/* An IPv4 address and port: the key of shunt_mtls_orig_v1 is the pod
 * socket's own (the proxy's accepted socket's peer), the value where it
 * was going. */
struct shunt_mtls_addr {
	__be32 ip4;
	__be16 port;
	__u16 flags;         /* in a value: SHUNT_MTLS_F_*; in a key: 0 */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_mtls_addr, 8);

#define SHUNT_MAX_MTLS_HANDOFFS 65536
