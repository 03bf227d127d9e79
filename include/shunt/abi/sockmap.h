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

/* Why a flow is not (or no longer) on the short-circuit: the socket
 * features the short-circuit cannot give the same way as TCP, and the
 * other causes (docs/short-circuit.md has the table). One X-list for the
 * enum, the names shuntctl and /metrics show, and the counter slots. Never
 * reuse or reorder a value. */
#define SHUNT_TCP_REASON_LIST(X)                                                    \
	X(NONE, "none")                                                             \
	X(OPTED_OUT, "opted-out")             /* shunt.dev/short-circuit: "off" */   \
	X(SPLICE, "splice")   /* splice(2) from the socket (needs fentry; else reader-never-read) */ \
	X(WAITALL, "recv-waitall")            /* recv(MSG_WAITALL) */                \
	X(RCVLOWAT, "rcvlowat")               /* SO_RCVLOWAT above 1 */              \
	X(URGENT, "urgent-data")              /* MSG_OOB */                          \
	X(ZEROCOPY_SEND, "zerocopy-send")     /* SO_ZEROCOPY */                      \
	X(ZEROCOPY_RECEIVE, "zerocopy-receive") /* TCP_ZEROCOPY_RECEIVE */           \
	X(FIONREAD, "fionread")               /* FIONREAD: needs a hook before ioctl */ \
	X(RECEIVE_CMSG, "receive-cmsg")       /* receive timestamps, TCP_INQ */      \
	X(ULP, "tcp-ulp")                     /* TCP_ULP (kTLS and the like) */      \
	X(RECV_TRUNC, "recv-trunc")           /* recv(MSG_TRUNC) discards */         \
	X(MPTCP, "mptcp")                     /* an MPTCP subflow */                 \
	X(SLOW_READER, "slow-reader")         /* over the unread-bytes budget, for a while */ \
	X(PEER_MISSING, "peer-not-short-circuited") /* the other end is not in the sockhash */ \
	X(NO_PLAIN_READ, "reader-never-read") /* the receiver read no data with recvmsg (splice...) */

#define SHUNT_TCP_REASON_ENUM(name, str) SHUNT_TCP_##name,
enum shunt_tcp_reason { SHUNT_TCP_REASON_LIST(SHUNT_TCP_REASON_ENUM) SHUNT_TCP_REASON_MAX };
#undef SHUNT_TCP_REASON_ENUM
/* Slots of the per-reason counter map (room for reasons to come). */
#define SHUNT_TCP_REASON_SLOTS 32
SHUNT_ABI_STATIC_ASSERT(SHUNT_TCP_REASON_MAX <= SHUNT_TCP_REASON_SLOTS, "reasons outgrew their counters");

/* shunt_sock_ref.flags: atomic ORs only (both ends and the receive-path
 * hooks write them). */
#define SHUNT_REF_F_READS (1u << 0)   /* a plain recvmsg was seen: redirects may land here */
#define SHUNT_REF_F_TCP (1u << 1)     /* the flow takes TCP for good: `reason` says why */
#define SHUNT_REF_F_TX_DONE (1u << 2) /* this end sends by TCP for good (nothing in flight) */
#define SHUNT_REF_F_RELEASED (1u << 3) /* taken out of the sockhash: a plain TCP socket now */

/* Where each short-circuited socket lives in the kernel, so the sender's
 * sk_msg can see how much its peer has not read yet, and how it reads. The
 * cookie guards against a freed and reused struct sock. Never read by
 * userspace. */
struct shunt_sock_ref {
	__u64 sk_addr;
	__u64 cookie;
	__u32 flags;  /* SHUNT_REF_F_* */
	__u32 reason; /* enum shunt_tcp_reason: the first one seen (compare-and-swap from 0) */
	__u64 tcp_since_ns; /* when SHUNT_REF_F_TCP was set (CLOCK_MONOTONIC) */
	/* TCP's counts of what this end sent when it left the sockhash: its
	 * flow record counts later sends from them (sk_msg no longer runs). */
	__u64 acked_at_release;
	__u32 segs_out_at_release;
	__u32 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_sock_ref, 48);

/* Per-socket state kept in socket-local storage. */
#define SHUNT_SOCK_F_PEER_MISSING (1u << 0) /* a send missed the peer: TCP for good */
#define SHUNT_SOCK_F_SLOW_READER (1u << 1)  /* peer queue over budget: TCP until drained */
#define SHUNT_SOCK_F_FLOW_CLIENT (1u << 2)  /* the client end of its flow record */
#define SHUNT_SOCK_F_FLOW_SERVER (1u << 3)  /* the server end of its flow record */
#define SHUNT_SOCK_F_NO_FLOW (1u << 4)      /* no flow record: count nothing */
#define SHUNT_SOCK_F_IN_ORDER (1u << 5)     /* all sent by TCP was read: a redirect cannot overtake */
#define SHUNT_SOCK_F_TCP_FOREVER (1u << 6)  /* the flow took TCP for good */
#define SHUNT_SOCK_F_MTLS_LEG (1u << 7)     /* a leg to the mTLS proxy: its record is keyed unproxied */
struct shunt_sock_state {
	__u32 flags;
	__u32 unchecked_bytes; /* redirected since the peer's queue was last read */
	__u64 peer_queued_seen; /* the peer's unread redirected bytes at the last budget check */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_sock_state, 16);
