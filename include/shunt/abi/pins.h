/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Names under the agent's bpffs directory. Maps are pinned by their BPF
 * names (LIBBPF_PIN_BY_NAME), which carry the ABI version suffix; links go
 * into the links/ subdirectory. */
#pragma once

#define SHUNT_MAP_META "shunt_meta_v1"
#define SHUNT_MAP_ENDPOINTS "shunt_endpoints_v2" /* v2: the pod's IPv6 address */
#define SHUNT_MAP_ENDPOINT_META "shunt_ep_meta_v1"
#define SHUNT_MAP_IPCACHE "shunt_ipcache_v1"
#define SHUNT_MAP_IPCACHE6 "shunt_ipcache6_v1"
#define SHUNT_MAP_SOCKHASH "shunt_sockhash_v1"
#define SHUNT_MAP_COUNTERS "shunt_counters_v2" /* v2: room for new counters */
#define SHUNT_MAP_SOCKREF "shunt_sockref_v2" /* v2: how the socket reads, why it left */
#define SHUNT_MAP_TCP_REASONS "shunt_tcp_reasons_v1" /* per-CPU counters by enum shunt_tcp_reason */
#define SHUNT_MAP_POLICY "shunt_policy_v1"
#define SHUNT_MAP_RULE_META "shunt_rule_meta_v1"
#define SHUNT_MAP_IDENTITY_META "shunt_id_meta_v1"
#define SHUNT_MAP_CONFIG "shunt_config_v1"
#define SHUNT_MAP_EVENTS "shunt_events_v1"
#define SHUNT_MAP_TC_ENDPOINTS "shunt_tc_eps_v2" /* v2: the pod's IPv6 address */
#define SHUNT_MAP_FLOWS "shunt_flows_v3" /* v3: 32-bit flags that hold the open ends */
#define SHUNT_MAP_FLOW_HISTS "shunt_flow_hists_v1"
#define SHUNT_MAP_FLOW_EVENTS "shunt_flow_events_v3" /* v3: shunt_flows_v3's record */
#define SHUNT_MAP_SERVICES "shunt_services_v2" /* v2: tables of up to 4 slots inline */
#define SHUNT_MAP_SLOTS "shunt_slots_v1"
#define SHUNT_MAP_SVC_ORIGIN "shunt_svc_origin_v1"
#define SHUNT_MAP_UDP_REVNAT "shunt_udp_revnat_v1"
#define SHUNT_MAP_LB_SCORES "shunt_lb_scores_v1"
#define SHUNT_MAP_LB_TRACE "shunt_lb_trace_v1"
#define SHUNT_MAP_UDP_REPLIES "shunt_udp_replies_v1"
#define SHUNT_MAP_UDP_REPLIES6 "shunt_udp_replies6_v1"
#define SHUNT_MAP_UDP_BUDGET "shunt_udp_budget_v1"
#define SHUNT_MAP_FRAGMENTS "shunt_fragments_v1"
#define SHUNT_MAP_FRAGMENTS6 "shunt_fragments6_v1"
#define SHUNT_MAP_POD_CIDRS "shunt_pod_cidrs_v1"
#define SHUNT_MAP_EVENT_BUDGET "shunt_event_budget_v1"
#define SHUNT_MAP_REVNAT_BUDGET "shunt_revnat_budget_v1"
#define SHUNT_MAP_MTLS_CONFIG "shunt_mtls_config_v1"
#define SHUNT_MAP_MTLS_SK "shunt_mtls_sk_v1"
#define SHUNT_MAP_MTLS_ORIG "shunt_mtls_orig_v1"
#define SHUNT_MAP_MTLS_ORIG6 "shunt_mtls_orig6_v1"

#define SHUNT_LINK_DIR "links"
#define SHUNT_LINK_SOCKOPS "sockops"
#define SHUNT_LINK_SK_MSG "sk_msg"
#define SHUNT_LINK_CONNECT4 "connect4"
#define SHUNT_LINK_SENDMSG4 "sendmsg4"
#define SHUNT_LINK_GETPEERNAME4 "getpeername4"
#define SHUNT_LINK_RECVMSG4 "recvmsg4"
/* v4-mapped destinations of AF_INET6 sockets */
#define SHUNT_LINK_CONNECT6 "connect6"
#define SHUNT_LINK_GETPEERNAME6 "getpeername6"
#define SHUNT_LINK_RECVMSG6 "recvmsg6"
#define SHUNT_LINK_SENDMSG6 "sendmsg6"
/* the short-circuit's transparency (bpf/sock_watch.bpf.c, bpf/sockopt.bpf.c) */
#define SHUNT_LINK_SETSOCKOPT "setsockopt"
#define SHUNT_LINK_GETSOCKOPT "getsockopt"
#define SHUNT_LINK_WATCH_RECV "watch-recv"
#define SHUNT_LINK_WATCH_SEND "watch-send"
#define SHUNT_LINK_TC_DIR "tc" /* links/tc/<ifindex>-from-pod, -to-pod */
