/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* SMI identity policy: (source identity, destination identity, destination
 * port, protocol) -> verdict, plus the mode and the denial events. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_MAX_POLICY (1u << 18)
#define SHUNT_MAX_RULES 65536
#define SHUNT_MAX_IDENTITIES 65536
/* Reserved identities (below the allocator's first, 256). */
#define SHUNT_IDENTITY_UNKNOWN_POD 2 /* an address in --pod-cidrs no known pod holds */

/* Verdicts stored in the policy map. A missing entry is a denial. Never
 * reuse a value. */
#define SHUNT_VERDICT_ALLOW 1
#define SHUNT_VERDICT_L7 2 /* HTTP routes only: the proxy must judge each request */

/* dport 0 in a key means "any port". */
struct shunt_policy_key {
	__u32 src_identity;
	__u32 dst_identity;
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_policy_key, 12);

struct shunt_policy_value {
	__u8 verdict;
	__u8 pad[3];
	__u32 rule_id; /* the TrafficTarget that granted it (shunt_rule_meta) */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_policy_value, 8);

/* Names for the CLI, written by the agent, never read by BPF. */
struct shunt_rule_meta {
	char namespace_[64];
	char name[256];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_rule_meta, 320);

struct shunt_identity_meta {
	char namespace_[64];
	char service_account[256];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_identity_meta, 320);

/* The config map: one entry, index 0. */
#define SHUNT_MODE_PERMISSIVE 0 /* compute and count verdicts, deny nothing */
#define SHUNT_MODE_ENFORCE 1    /* deny what no TrafficTarget allows */
#define SHUNT_CONFIG_F_NO_TELEMETRY (1u << 0) /* keep no flow records */
#define SHUNT_CONFIG_F_ICMP_ECHO (1u << 1)    /* ICMP echo between meshed pods passes */
#define SHUNT_CONFIG_F_NO_SHORT_CIRCUIT (1u << 2) /* the socket watch is missing: all flows on TCP */
struct shunt_config {
	__u32 mode;
	__u32 flags; /* SHUNT_CONFIG_F_* */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_config, 8);

/* A denial (enforced or, in permissive mode, would-be), sent on the events
 * ring buffer. */
#define SHUNT_EVENT_POLICY_DENY 1
#define SHUNT_EVENT_SPOOF_DROP 2
/* Granted only through HTTP routes, which no proxy judges yet: denied at L4
 * in enforce mode, reported in permissive mode. */
#define SHUNT_EVENT_POLICY_DENY_L7 3
/* A fragment between meshed pods that cannot be judged: a first fragment
 * too short to hold the transport header, or a later fragment whose first
 * one was not seen passing. */
#define SHUNT_EVENT_FRAGMENT_DROP 4
/* An IP protocol SMI cannot express (ICMP, SCTP, ...) between meshed pods;
 * ICMP errors of an allowed flow and, with the flag, ICMP echo pass. */
#define SHUNT_EVENT_PROTOCOL_DENY 5
/* A new flow to a meshed pod from a pod the agent does not know yet (an
 * address in --pod-cidrs without an identity). */
#define SHUNT_EVENT_UNKNOWN_POD 6
/* A new TCP connection to a local pod straight from a pod on another node,
 * not through the nodes' mTLS proxies: dropped with --mtls=strict, reported
 * with permissive. */
#define SHUNT_EVENT_PLAINTEXT 7
#define SHUNT_HOOK_CONNECT4 1
#define SHUNT_HOOK_SENDMSG4 2
#define SHUNT_HOOK_TC 3
#define SHUNT_HOOK_CONNECT6 4 /* TCP or connected UDP on an AF_INET6 socket */
#define SHUNT_HOOK_TC_FROM_POD 5 /* a packet leaving a local pod (raw sockets, NAT in the pod) */
#define SHUNT_HOOK_SENDMSG6 6 /* unconnected UDP to a native IPv6 address */
struct shunt_deny_event {
	__u64 ts_ns; /* bpf_ktime_get_ns */
	__u64 netns_cookie;
	__u32 src_identity;
	__u32 dst_identity;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 type;     /* SHUNT_EVENT_* */
	__u8 hook;     /* SHUNT_HOOK_* */
	__u8 enforced; /* 0: permissive mode, the traffic went through */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_deny_event, 40);

/* A denial between IPv6 addresses: a longer record on the same ring (its
 * size tells it apart; a reader that knows only shunt_deny_event reads the
 * first 40 bytes, where saddr and daddr are 0). */
struct shunt_deny_event6 {
	struct shunt_deny_event base;
	struct shunt_ip6 saddr6;
	struct shunt_ip6 daddr6;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_deny_event6, 72);

/* UDP reply tracking. A datagram that policy allows from client to server
 * opens the way back — from server:server_port to client:client_port, and
 * only that — for as long as the client keeps sending (idle timeout). The
 * TC guards open and refresh an exchange (they see every datagram's ports);
 * the socket hooks and the TC guards let a reply through. Key of
 * shunt_udp_replies_v1 (LRU); the value is the time of the client's last
 * datagram (bpf_ktime_get_ns). */
#define SHUNT_MAX_UDP_EXCHANGES 65536
#define SHUNT_UDP_EXCHANGE_IDLE_NS (30ull * 1000000000ull)
struct shunt_udp_exchange_key {
	__be32 client_ip;
	__be32 server_ip;
	__be16 client_port;
	__be16 server_port;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_udp_exchange_key, 12);
/* The same between IPv6 addresses (shunt_udp_replies6_v1). */
struct shunt_udp_exchange6_key {
	struct shunt_ip6 client_ip;
	struct shunt_ip6 server_ip;
	__be16 client_port;
	__be16 server_port;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_udp_exchange6_key, 36);

/* Per local pod (key: its IPv4 address): new exchanges opened in the
 * current window of SHUNT_UDP_EXCHANGE_IDLE_NS, so that one pod's one-shot
 * sockets cannot evict the others' exchanges (at most twice its budget is
 * alive at once). Over budget, a datagram still goes out, unrecorded: its
 * replies are denied. */
#define SHUNT_MAX_UDP_BUDGETS 16384

/* IPv4 fragments: the first fragment of a datagram between meshed pods is
 * judged like a whole packet; when it passes, its later fragments may
 * follow (key of shunt_fragments_v1, LRU; value: when the first passed).
 * A later fragment with no record is dropped in enforce mode. */
#define SHUNT_MAX_FRAGMENTED 8192
#define SHUNT_FRAGMENT_TTL_NS (30ull * 1000000000ull) /* Linux's ipfrag_time */
struct shunt_fragment_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_fragment_key, 12);
/* IPv6 (shunt_fragments6_v1): the Fragment header's 32-bit identification. */
struct shunt_fragment6_key {
	struct shunt_ip6 saddr;
	struct shunt_ip6 daddr;
	__be32 id;
	__u8 proto; /* the header after the Fragment header */
	__u8 pad[3];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_fragment6_key, 40);
struct shunt_udp_budget {
	__u64 window_start_ns;
	__u32 opened;
	__u32 pad;
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_udp_budget, 16);

/* Denial events per source identity per second (shunt_event_budget_v1,
 * key: the source identity, value: a struct shunt_udp_budget counting
 * events in a one-second window): one pod's flood of denied or spoofed
 * packets cannot fill the ring every other pod's denials share. Over it,
 * the verdict still holds and the event is only counted. */
#define SHUNT_EVENTS_PER_IDENTITY_PER_S 200
#define SHUNT_MAX_EVENT_BUDGETS 16384
