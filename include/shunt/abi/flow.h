/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Per-flow telemetry: a record per TCP connection with a local pod at one
 * end (or both), kept in an LRU map while the connection lives and sent to
 * the agent through a ring buffer when its last local end closes. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MAX_FLOWS 16384 /* default; the agent may size the map */

/* Latency histograms, log-linear: bucket 0 holds values under 2^10 ns
 * (1.024 us); then each power of two from 2^10 to 2^34 ns (17.2 s) is cut
 * into 8 equal sub-buckets (at most 12.5% wide); the last bucket holds
 * everything from 2^34 ns up. Kernel and agent share the layout, so per-flow
 * histograms add into per-edge ones bucket by bucket. */
#define SHUNT_HIST_MIN_SHIFT 10
#define SHUNT_HIST_OCTAVES 24
#define SHUNT_HIST_SUB_SHIFT 3
#define SHUNT_HIST_SUB (1u << SHUNT_HIST_SUB_SHIFT)
#define SHUNT_HIST_BUCKETS (2 + SHUNT_HIST_OCTAVES * SHUNT_HIST_SUB)

/* floor(log2(v)) for v > 0, with shifts only (no clz on BPF). */
static inline __u32 shunt_log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) r += 1;
	return r;
}

static inline __u32 shunt_hist_bucket(__u64 ns)
{
	__u32 octave;

	if (ns < (1ull << SHUNT_HIST_MIN_SHIFT))
		return 0;
	if (ns >= (1ull << (SHUNT_HIST_MIN_SHIFT + SHUNT_HIST_OCTAVES)))
		return SHUNT_HIST_BUCKETS - 1;
	octave = shunt_log2_u64(ns);
	return 1 + (octave - SHUNT_HIST_MIN_SHIFT) * SHUNT_HIST_SUB +
	       (__u32)((ns >> (octave - SHUNT_HIST_SUB_SHIFT)) & (SHUNT_HIST_SUB - 1));
}

/* A TCP connection, oriented client -> server whichever end is local. */
struct shunt_flow_key {
	__be32 client_ip4;
	__be32 server_ip4;
	__be16 client_port;
	__be16 server_port;
	__u32 pad; /* always zero: the key is compared as bytes */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_flow_key, 16);

/* What policy said when the connection was set up. */
enum shunt_flow_verdict {
	SHUNT_FLOW_UNMESHED = 0, /* an end is not a meshed pod: no policy applies */
	SHUNT_FLOW_ALLOWED = 1,  /* an L4 grant */
	SHUNT_FLOW_L7 = 2,       /* an HTTPRouteGroup grant (allowed at L4 until the proxy) */
	SHUNT_FLOW_AUDIT = 3,    /* no grant; permissive mode let it through */
	SHUNT_FLOW_DENIED = 4,   /* refused at connect() (enforce) */
};

/* How it ended. */
enum shunt_flow_end {
	SHUNT_FLOW_OPEN = 0,
	SHUNT_FLOW_CLOSED = 1,  /* orderly close (FIN) */
	SHUNT_FLOW_RESET = 2,   /* aborted after it was established (RST or abortive close) */
	SHUNT_FLOW_REFUSED = 3, /* never established: refused (RST to the SYN) or timed out */
	SHUNT_FLOW_DENIED_END = 4, /* denied by policy at connect() */
};

/* The record's flags, one 32-bit word that both ends' sockops set bits of,
 * each under its own socket's lock (never each other's): bits are only ever
 * added, with atomic ORs, so no end can lose another's. */
#define SHUNT_FLOW_F_CLIENT_LOCAL (1u << 0) /* the client end is a local pod (it joined) */
#define SHUNT_FLOW_F_SERVER_LOCAL (1u << 1) /* the server end is a local pod (it joined) */
#define SHUNT_FLOW_F_SC_CLIENT (1u << 2) /* client end in the sockhash: sk_msg counts its sends */
#define SHUNT_FLOW_F_ESTABLISHED (1u << 3)
#define SHUNT_FLOW_F_SC_SERVER (1u << 4) /* server end in the sockhash */
#define SHUNT_FLOW_F_SHORT_CIRCUIT (SHUNT_FLOW_F_SC_CLIENT | SHUNT_FLOW_F_SC_SERVER)
/* Carried between nodes by the mTLS proxies: on the sending node the pod's
 * connection handed to its proxy (recorded under the destination it asked
 * for), on the receiving node the proxy's connection to the pod (from the
 * client pod's address). */
#define SHUNT_FLOW_F_MTLS (1u << 5)
#define SHUNT_FLOW_F_MTLS_INBOUND (1u << 6) /* ... on the receiving node */
/* Through this node's L7 proxy (docs/l7.md): the pod's connection to the
 * proxy's L7 port, recorded under the destination it asked for ... */
#define SHUNT_FLOW_F_L7 (1u << 7)
/* ... and the proxy's own connection to the destination pod, from the
 * client's address: the same exchange, kept out of flows and edges so it
 * is not counted twice. */
#define SHUNT_FLOW_F_L7_UPSTREAM (1u << 10)
/* A pod's connection the kernel sent to the proxy (either port). */
#define SHUNT_FLOW_F_HANDED_OFF (SHUNT_FLOW_F_MTLS | SHUNT_FLOW_F_L7)
/* A local end that closed: its _LOCAL bit, shifted. */
#define SHUNT_FLOW_F_CLOSED_SHIFT 8
#define SHUNT_FLOW_F_CLIENT_CLOSED (SHUNT_FLOW_F_CLIENT_LOCAL << SHUNT_FLOW_F_CLOSED_SHIFT)
#define SHUNT_FLOW_F_SERVER_CLOSED (SHUNT_FLOW_F_SERVER_LOCAL << SHUNT_FLOW_F_CLOSED_SHIFT)
/* How a closing end saw the connection end (enum shunt_flow_end), one bit
 * per kind; the record's `end` is the worst of them. */
#define SHUNT_FLOW_F_END_SHIFT 16
#define SHUNT_FLOW_F_END(e) (1u << (SHUNT_FLOW_F_END_SHIFT + (e)))

/* The local ends still open: SHUNT_FLOW_F_CLIENT_LOCAL and/or
 * SHUNT_FLOW_F_SERVER_LOCAL. The record stays in the map while any is. */
static inline __u32 shunt_flow_open_ends(__u32 flags)
{
	return flags & (SHUNT_FLOW_F_CLIENT_LOCAL | SHUNT_FLOW_F_SERVER_LOCAL) &
	       ~(flags >> SHUNT_FLOW_F_CLOSED_SHIFT);
}

/* Whether a closing end ships the record: its atomic OR of `mark` (its
 * _CLOSED bit and how it ended) returned `old`, and that OR is what left no
 * local end open. Of two ends closing at once, exactly one sees this. */
static inline int shunt_flow_closes_last(__u32 old, __u32 mark)
{
	return shunt_flow_open_ends(old) && !shunt_flow_open_ends(old | mark);
}

/* Request/response direction state. */
#define SHUNT_FLOW_DIR_NONE 0
#define SHUNT_FLOW_DIR_TO_SERVER 1
#define SHUNT_FLOW_DIR_TO_CLIENT 2

/* The live record of a connection (shunt_flows_v3), laid out by when it is
 * written: the first cache line when the connection opens and closes; the
 * second holds everything a send updates (both ends write it, so it is the
 * one line that moves between the CPUs of a request/response exchange) and
 * the flags. Besides `flags`, only the request/response hint (last_dir,
 * req_start_ns: lib/flow.bpf.h) is written by both ends; every other field
 * has one writer at a time: the end that made the record, the end whose
 * sends it counts, the end that reads the TCP statistics, or (`end`,
 * `end_ns`) the end that closes last. Two cache lines, so that making,
 * closing and shipping a record stays cheap for the many connections that
 * never answer a request: the response-latency histogram lives in a map of
 * its own (shunt_flow_hists_v1), made at a flow's first response. */
struct shunt_flow {
	struct shunt_flow_key key;
	__u64 start_ns;   /* CLOCK_MONOTONIC: connect() on a local client, else established */
	__u64 end_ns;     /* when the last local end closed; 0 while open */
	__u64 connect_ns; /* connect() -> established on a local client; 0 = not measured */
	__u32 src_identity; /* client; 0 = not a meshed pod */
	__u32 dst_identity; /* server */
	__u32 srtt_us;      /* TCP path: smoothed RTT at close */
	__u32 min_rtt_us;   /* TCP path: minimum RTT seen */
	__u32 retrans;      /* TCP path: segments retransmitted */
	__u32 rule_id;      /* the policy entry that allowed it, 0 if none */
	/* offset 64 */
	__u64 bytes[2];   /* [0] client -> server, [1] server -> client */
	__u64 msgs[2];    /* sends (short-circuit) or data segments (TCP path), same order */
	__u64 rr_sum_ns;  /* request/response latency: sum and count of samples */
	__u64 rr_count;
	__u64 req_start_ns; /* start of the request being answered (internal) */
	__u32 flags;        /* SHUNT_FLOW_F_*: atomic ORs only */
	__u8 last_dir;      /* SHUNT_FLOW_DIR_* (internal) */
	__u8 verdict;       /* enum shunt_flow_verdict */
	__u8 end;           /* enum shunt_flow_end: OPEN until the last local end closes */
	__u8 tcp_reason;    /* enum shunt_tcp_reason: why it is not (or no longer) socket to socket */
} __attribute__((aligned(8)));
SHUNT_ABI_ASSERT_SIZE(struct shunt_flow, 128);
SHUNT_ABI_STATIC_ASSERT(__builtin_offsetof(struct shunt_flow, flags) % 4 == 0,
			"atomic ORs need an aligned word");

/* A flow's response-latency histogram (shunt_flow_hists_v1, same key as the
 * record). start_ns is the record's: an entry left behind by an evicted
 * record is never mistaken for a later connection on the same 4-tuple. */
struct shunt_flow_hist {
	__u64 start_ns;
	__u32 rr_hist[SHUNT_HIST_BUCKETS];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_flow_hist, 784);

/* What the ring (shunt_flow_events_v3) carries when a flow ends: the
 * record, followed by its histogram only if it has one. A record of
 * sizeof(struct shunt_flow) bytes had no response sample. */
struct shunt_flow_event {
	struct shunt_flow flow;
	__u32 rr_hist[SHUNT_HIST_BUCKETS];
} __attribute__((aligned(8)));
SHUNT_ABI_ASSERT_SIZE(struct shunt_flow_event, 904);
#ifdef __cplusplus
static_assert(__builtin_offsetof(struct shunt_flow, bytes) == 64, "per-send fields start a cache line");
static_assert(__builtin_offsetof(struct shunt_flow_event, rr_hist) == sizeof(struct shunt_flow),
              "the histogram follows the record");
#endif
