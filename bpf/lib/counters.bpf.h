/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once
#include "maps.bpf.h"

static __always_inline void counter_add(enum shunt_counter idx, __u64 n)
{
	__u32 key = idx;
	__u64 *v = bpf_map_lookup_elem(&shunt_counters_v2, &key);

	if (v)
		*v += n; /* per-CPU slot: no atomics needed */
}
