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
#define SHUNT_LB_P2C_EWMA 1 /* two random slots, the less loaded one (planned) */
struct shunt_svc_value {
	__u32 table;  /* slot table id: a new id per rebuild, so a table is never half-written */
	__u32 slots;  /* 0 = no ready backend: connect() is refused (ECONNREFUSED) */
	__u32 svc_id; /* stable per service and port, for counters and shuntctl */
	__u8 lb;      /* SHUNT_LB_* */
	__u8 pad[3];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_svc_value, 16);

/* slots: (table, index) -> backend. A backend with weight w appears in
 * w / total of a table's slots. */
struct shunt_slot_key {
	__u32 table;
	__u32 index;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_slot_key, 8);

struct shunt_backend {
	__be32 ip;
	__be16 port;
	__u16 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_backend, 8);

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
