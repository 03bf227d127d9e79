/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Services at the socket: a ClusterIP address and port is resolved to one
 * backend pod at connect() time (cgroup/connect4), and the application is
 * shown the service address it asked for (cgroup/getpeername4). */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MAX_SERVICES 16384
#define SHUNT_MAX_SLOTS (1u << 20)
#define SHUNT_SPLIT_SLOTS 1000 /* slots of a weighted table: 0.1% steps */

/* services: (ClusterIP, port, protocol) -> the slot table in force. */
struct shunt_svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP / IPPROTO_UDP */
	__u8 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_svc_key, 8);

#define SHUNT_LB_RANDOM 0   /* a uniformly random slot (slots carry the weights) */
#define SHUNT_LB_P2C_EWMA 1 /* two distinct random slots, the lower score (shunt_lb_scores_v1) */

/* The service's HTTP is balanced per request by the node proxy's L7 layer
 * (a TrafficSplit with matches, or shunt.dev/ annotations: docs/l7.md):
 * meshed pods' TCP connections go to the proxy while its L7 layer is on;
 * everyone else is balanced here over the slots, as without the flag. */
#define SHUNT_SVC_F_L7 0x1

struct shunt_backend {
	__be32 ip;
	__be16 port;
	__u16 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_backend, 8);

/* Tables this small live in the service entry itself: no slot lookup (one
 * cache miss fewer per connect(), measured ~0.5 us with 1,000 services). */
#define SHUNT_SVC_INLINE 4

struct shunt_svc_value {
	__u32 table;  /* slot table id (0 = the table is `inline_slots`): a new id per rebuild */
	__u32 slots;  /* 0 = no ready backend: connect() is refused (ECONNREFUSED) */
	__u32 svc_id; /* stable per service and port, for counters and shuntctl */
	__u8 lb;      /* SHUNT_LB_* */
	__u8 flags;   /* SHUNT_SVC_F_* */
	__u8 pad[2];
	struct shunt_backend inline_slots[SHUNT_SVC_INLINE]; /* when table == 0 */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_svc_value, 48);

/* slots: (table, index) -> backend. A backend with weight w appears in
 * w / total of a table's slots. */
struct shunt_slot_key {
	__u32 table;
	__u32 index;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_slot_key, 8);

/* UDP replies: (socket, backend) -> the service address the datagram was
 * sent to, so cgroup/recvmsg4 shows replies as coming from the service. */
#define SHUNT_MAX_UDP_REVNAT 65536
struct shunt_revnat_key {
	__u64 cookie; /* bpf_get_socket_cookie */
	__be32 ip;
	__be16 port;
	__u16 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_revnat_key, 16);

/* Per-socket storage of cgroup/connect4: the service address the
 * application asked for, so getpeername() can answer it. */
struct shunt_svc_origin {
	__be32 vip;
	__be16 port;
	__u16 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_svc_origin, 8);

/* Latency-aware choice (SHUNT_LB_P2C_EWMA): backend -> score, written by
 * the agent several times a second from what telemetry measures (peak
 * EWMA of response latency x (open connections + 1), failures as slow
 * samples). Lower is better; a backend without an entry scores 0 and is
 * tried first (new pods get traffic at once). */
#define SHUNT_MAX_LB_BACKENDS 65536
struct shunt_lb_score {
	__u32 score;
	__u32 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_lb_score, 8);

/* The last choices connect4/sendmsg4 made, per CPU, for `shuntctl lb
 * explain`: a ring of SHUNT_LB_TRACE_LEN entries, `next` the one to write. */
#define SHUNT_LB_TRACE_LEN 64
struct shunt_lb_choice {
	__u64 ts_ns;   /* bpf_ktime_get_ns */
	__u32 svc_id;
	__u8 lb;       /* SHUNT_LB_* used */
	__u8 picked;   /* index into cand[] of the backend chosen */
	__u8 ncand;    /* 1 (random slot) or 2 (two choices) */
	__u8 pad;
	__u32 slot[2];
	__u32 score[2];
	struct shunt_backend cand[2];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_lb_choice, 48);

struct shunt_lb_trace {
	__u32 next;
	__u32 pad;
	struct shunt_lb_choice choices[SHUNT_LB_TRACE_LEN];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_lb_trace, 8 + 48 * SHUNT_LB_TRACE_LEN);
