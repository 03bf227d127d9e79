/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Global data-path counters: one per-CPU array slot each. The X-list is the
 * single source of both the enum and the names shuntctl prints. Never reuse
 * or reorder an index; retire by renaming to RETIRED_n. */
#pragma once
#include "shunt/abi/common.h"

#define SHUNT_COUNTER_LIST(X)                                                           \
	X(SOCK_SHORT_CIRCUITED, "sockets_short_circuited")                              \
	X(SOCK_INSERT_FAILED, "socket_insert_failed")     /* sockhash full or error */   \
	X(SOCK_SKIP_NOT_POD, "sockets_skipped_not_pod")   /* host or unknown netns */    \
	X(SOCK_SKIP_PEER_REMOTE, "sockets_skipped_peer_not_local")                      \
	X(SOCK_SKIP_NOT_POD_IP, "sockets_skipped_not_pod_ip") /* e.g. loopback in pod */\
	X(MSG_REDIRECTED, "messages_redirected")                                        \
	X(BYTES_REDIRECTED, "bytes_redirected")                                         \
	X(MSG_PEER_MISS, "messages_peer_missing")         /* peer not in sockhash */     \
	X(MSG_STAY_TCP, "messages_kept_on_tcp")           /* after a miss, for order */  \
	X(SOCK_STATE_FULL, "socket_state_unavailable")                                  \
	X(FLOW_BACKPRESSURE, "flows_moved_to_tcp_slow_reader")                         \
	X(FLOW_RESUMED, "flows_resumed_short_circuit")                                  \
	X(POLICY_ALLOWED, "policy_allowed")                                             \
	X(POLICY_L7_NO_PROXY, "policy_l7_only_grant_denied_no_proxy") /* enforce: EPERM */ \
	X(POLICY_DENIED, "policy_denied")                                               \
	X(POLICY_WOULD_DENY, "policy_would_deny_permissive")                            \
	X(EVENTS_LOST, "events_lost")                                                   \
	X(SPOOF_DROPPED, "packets_dropped_spoofed_source")                              \
	X(TC_POLICY_DENIED, "packets_dropped_policy_remote")                            \
	X(TC_POLICY_WOULD_DENY, "packets_would_drop_policy_remote_permissive")          \
	X(TC_POLICY_ALLOWED, "packets_allowed_policy_remote")                          \
	X(FLOWS_OPENED, "flows_opened")                                                 \
	X(FLOWS_ENDED, "flows_ended")                                                   \
	X(FLOW_EVENTS_LOST, "flow_records_lost_ringbuf_full")                           \
	X(FLOW_UNTRACKED, "flows_untracked_map_error")                                  \
	X(FLOW_EVICTED, "flows_closed_after_eviction")  /* LRU evicted while open */   \
	X(SVC_CONNECTS, "service_connects_balanced")                                    \
	X(SVC_NO_BACKEND, "service_connects_refused_no_backend")                        \
	X(SVC_SLOT_MISSING, "service_slot_missing")  /* table being replaced: passed */ \
	X(SVC_ORIGIN_LOST, "service_origin_unavailable") /* getpeername shows the pod */ \
	X(TC_LOCAL_DENIED, "packets_dropped_policy_local_source")                       \
	X(TC_LOCAL_WOULD_DENY, "packets_would_drop_policy_local_source_permissive")     \
	X(UDP_REPLY_ALLOWED, "udp_replies_allowed")                                     \
	X(UDP_EXCHANGE_OVER_BUDGET, "udp_exchanges_untracked_pod_over_budget")          \
	X(UDP_EXCHANGE_LOST, "udp_exchanges_untracked_map_error")                      \
	X(FRAGMENT_DROPPED, "fragments_dropped_unjudgeable")                            \
	X(FRAGMENT_WOULD_DROP, "fragments_would_drop_unjudgeable_permissive")          \
	X(PROTO_DENIED, "packets_dropped_protocol_not_in_smi")                          \
	X(PROTO_WOULD_DENY, "packets_would_drop_protocol_not_in_smi_permissive")        \
	X(ICMP_ERROR_ALLOWED, "icmp_errors_of_allowed_flows")                           \
	X(EVENTS_RATE_LIMITED, "events_dropped_identity_over_rate")                     \
	X(SVC_REVNAT_OVER_BUDGET, "service_udp_replies_unmapped_pod_over_budget")      \
	X(FRAME_UNPARSED_DROPPED, "frames_dropped_unparsed_from_pod") /* still VLAN-tagged */ \
	X(FLOW_NODE_MEMORY, "flows_moved_to_tcp_node_memory") /* over --node-tcp-memory-bytes */ \
	X(MSG_AWAIT_READER, "messages_on_tcp_until_peer_reads") /* peer not seen in recvmsg yet */ \
	X(SOCK_RELEASED, "sockets_released_to_tcp")   /* left the sockhash: flow on TCP for good */ \
	X(SOCK_SKIP_WATCH_MISSING, "sockets_skipped_short_circuit_off") /* no socket watch */ \
	X(FLOW_HELD_NOT_READING, "flows_over_budget_held_reader_idle") /* kept in order: node budget */ \
	X(MTLS_HANDED_OFF, "connections_handed_to_proxy") /* cross-node, mTLS on */ \
	X(MTLS_HANDOFF_FAILED, "connections_not_handed_to_proxy_no_storage") /* refused if strict */ \
	X(MTLS_PLAINTEXT_DROPPED, "plaintext_connections_from_other_nodes_dropped") /* strict */ \
	X(MTLS_PLAINTEXT_ACCEPTED, "plaintext_connections_from_other_nodes_accepted") /* permissive */ \
	X(L7_HANDED_OFF, "connections_handed_to_l7_proxy") /* HTTP-routes-only grant */ \
	X(L7_SERVICE_HANDED_OFF, "service_connections_handed_to_l7_proxy") /* balanced per request */

#define SHUNT_COUNTER_ENUM(name, str) SHUNT_CTR_##name,
enum shunt_counter { SHUNT_COUNTER_LIST(SHUNT_COUNTER_ENUM) SHUNT_CTR_MAX };
#undef SHUNT_COUNTER_ENUM

/* Slots of the counters map: more than the counters, so that a version
 * adding counters reuses the pinned map of the one before (a pinned map of
 * another size fails to load, and an upgrade with it). */
#define SHUNT_COUNTER_SLOTS 128
SHUNT_ABI_STATIC_ASSERT(SHUNT_CTR_MAX <= SHUNT_COUNTER_SLOTS, "counters outgrew the map: new slots need a new map name");
