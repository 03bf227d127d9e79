/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Basics shared by every ABI header: fixed-width types on both sides of the
 * kernel/userspace line and the size assertion that locks struct layouts. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define SHUNT_ABI_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define SHUNT_ABI_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define SHUNT_ABI_ASSERT_SIZE(type, n) SHUNT_ABI_STATIC_ASSERT(sizeof(type) == (n), #type " changed size")

/* The layout of the pins as a whole; the pinned meta map records it so
 * shuntctl and a restarted agent refuse pins they cannot read. A single map
 * whose key, value or size changes gets a new pin name instead (_v2, ...;
 * the old name goes into lib::RetiredMapList), so an upgrade reuses every
 * other pin in place and keeps the data path running. */
#define SHUNT_ABI_VERSION 1

/* An IPv6 address in network byte order (as in struct in6_addr), in four
 * words so BPF can compare it without byte loops. All zero: none. */
struct shunt_ip6 {
	__be32 w[4];
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_ip6, 16);

/* The meta map: one entry, index 0. */
struct shunt_meta {
	__u32 abi_version;
	__u32 pad;
	__u64 installed_at_unix; /* when the first agent created the pins */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_meta, 16);
