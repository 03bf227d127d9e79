/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The same-node short-circuit: sockets of local pod-to-pod TCP connections,
 * keyed by their 4-tuple as seen from the socket itself. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MAX_SOCKETS 65536

struct shunt_sock_key {
	__be32 local_ip4;
	__be32 remote_ip4;
	__be16 local_port;
	__be16 remote_port;
	__u32 pad; /* always zero: the key is compared as bytes */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_sock_key, 16);

/* Where each short-circuited socket lives in the kernel, so the sender's
 * sk_msg can see how much its peer has not read yet. The cookie guards
 * against a freed and reused struct sock. Never read by userspace. */
struct shunt_sock_ref {
	__u64 sk_addr;
	__u64 cookie;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_sock_ref, 16);

/* Per-socket state kept in socket-local storage. */
#define SHUNT_SOCK_F_PEER_MISSING (1u << 0) /* a send missed the peer: TCP for good */
#define SHUNT_SOCK_F_SLOW_READER (1u << 1)  /* peer queue over budget: TCP until drained */
#define SHUNT_SOCK_F_FLOW_CLIENT (1u << 2)  /* the client end of its flow record */
#define SHUNT_SOCK_F_FLOW_SERVER (1u << 3)  /* the server end of its flow record */
#define SHUNT_SOCK_F_NO_FLOW (1u << 4)      /* no flow record: count nothing */
struct shunt_sock_state {
	__u32 flags;
	__u32 unchecked_bytes; /* redirected since the peer's queue was last read */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_sock_state, 8);
