/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* UDP reply tracking (see shunt/abi/policy.h): a datagram policy allows
 * opens its way back for SHUNT_UDP_EXCHANGE_IDLE_NS after the client's last
 * datagram; nothing else from the server side is a reply. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"
#include "counters.bpf.h"
#include "shunt/abi/policy.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_EXCHANGES);
	__type(key, struct shunt_udp_exchange_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_udp_replies_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_EXCHANGES);
	__type(key, struct shunt_udp_exchange6_key);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_udp_replies6_v1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_BUDGETS);
	__type(key, __be32);
	__type(value, struct shunt_udp_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_udp_budget_v1 SEC(".maps");

/* True when `exchanges` holds `key` (either family's exchange key) and the
 * client kept it alive. */
static __always_inline bool exchange_alive(void *exchanges, const void *key)
{
	__u64 *last = bpf_map_lookup_elem(exchanges, key);

	if (!last || bpf_ktime_get_ns() - *last >= SHUNT_UDP_EXCHANGE_IDLE_NS)
		return false;
	counter_add(SHUNT_CTR_UDP_REPLY_ALLOWED, 1);
	return true;
}

/* True when a datagram from server:sport to client:cport answers an
 * exchange the client opened and kept alive. */
static __always_inline bool udp_is_reply(__be32 server, __be16 sport, __be32 client, __be16 cport)
{
	struct shunt_udp_exchange_key k = {
		.client_ip = client, .server_ip = server, .client_port = cport, .server_port = sport,
	};

	return exchange_alive(&shunt_udp_replies_v1, &k);
}

static __always_inline bool udp_is_reply6(const struct shunt_ip6 *server, __be16 sport,
					  const struct shunt_ip6 *client, __be16 cport)
{
	struct shunt_udp_exchange6_key k = {
		.client_ip = *client, .server_ip = *server, .client_port = cport, .server_port = sport,
	};

	return exchange_alive(&shunt_udp_replies6_v1, &k);
}

/* Per local pod: UDP service reverse-NAT entries (shunt_udp_revnat_v1) it
 * made in the current window, under the same budget as exchanges. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SHUNT_MAX_UDP_BUDGETS);
	__type(key, __be32);
	__type(value, struct shunt_udp_budget);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} shunt_revnat_budget_v1 SEC(".maps");

/* Takes one from `owner`'s budget in `budgets` (key: a local pod's address)
 * for the window now in progress. A missing record that cannot be made
 * counts as over budget. */
static __always_inline bool udp_budget_take_from(void *budgets, __be32 owner, __u64 now,
						 __u32 budget)
{
	struct shunt_udp_budget *b = bpf_map_lookup_elem(budgets, &owner);
	struct shunt_udp_budget fresh = {.window_start_ns = now, .opened = 1};

	if (!b)
		return bpf_map_update_elem(budgets, &owner, &fresh, BPF_NOEXIST) == 0;
	if (now - b->window_start_ns >= SHUNT_UDP_EXCHANGE_IDLE_NS) {
		/* A new window. Two CPUs may both reset it: a few extra
		 * exchanges, never fewer. */
		b->window_start_ns = now;
		b->opened = 0;
	}
	if (b->opened >= budget)
		return false;
	__sync_fetch_and_add(&b->opened, 1);
	return true;
}

static __always_inline bool udp_budget_take(__be32 owner, __u64 now, __u32 budget)
{
	return udp_budget_take_from(&shunt_udp_budget_v1, owner, now, budget);
}

/* Opens the exchange `key` in `exchanges`, or keeps it alive. `owner` is
 * the local pod charged for a new one. */
static __always_inline void exchange_open(void *exchanges, const void *key, __be32 owner,
					  __u32 budget)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(exchanges, key);

	if (last) {
		/* One store per millisecond at most: a chatty flow must not
		 * bounce the cache line between CPUs on every datagram. */
		if (now - *last > 1000000)
			*last = now;
		return;
	}
	if (!udp_budget_take(owner, now, budget)) {
		counter_add(SHUNT_CTR_UDP_EXCHANGE_OVER_BUDGET, 1);
		return;
	}
	if (bpf_map_update_elem(exchanges, key, &now, BPF_ANY))
		counter_add(SHUNT_CTR_UDP_EXCHANGE_LOST, 1);
}

/* A datagram policy allowed from client:cport to server:sport. */
static __always_inline void udp_exchange_open(__be32 client, __be16 cport, __be32 server,
					      __be16 sport, __be32 owner, __u32 budget)
{
	struct shunt_udp_exchange_key k = {
		.client_ip = client, .server_ip = server, .client_port = cport, .server_port = sport,
	};

	exchange_open(&shunt_udp_replies_v1, &k, owner, budget);
}

/* The same between IPv6 addresses; the budget is the owner pod's one
 * (keyed by its IPv4 address) for both families. */
static __always_inline void udp_exchange6_open(const struct shunt_ip6 *client, __be16 cport,
					       const struct shunt_ip6 *server, __be16 sport,
					       __be32 owner, __u32 budget)
{
	struct shunt_udp_exchange6_key k = {
		.client_ip = *client, .server_ip = *server, .client_port = cport, .server_port = sport,
	};

	exchange_open(&shunt_udp_replies6_v1, &k, owner, budget);
}
