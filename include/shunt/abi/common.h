/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Basics shared by every ABI header: fixed-width types on both sides of the
 * kernel/userspace line and the size assertion that locks struct layouts. */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifdef __cplusplus
#define SHUNT_ABI_ASSERT_SIZE(type, n) static_assert(sizeof(type) == (n), #type " changed size")
#else
#define SHUNT_ABI_ASSERT_SIZE(type, n) _Static_assert(sizeof(type) == (n), #type " changed size")
#endif

/* Bumped whenever any pinned map's key or value layout changes; the pinned
 * meta map records it so shuntctl and a restarted agent can refuse to decode
 * maps of another layout. Map pin names carry the same suffix. */
#define SHUNT_ABI_VERSION 1

/* The meta map: one entry, index 0. */
struct shunt_meta {
	__u32 abi_version;
	__u32 pad;
	__u64 installed_at_unix; /* when the first agent created the pins */
};
SHUNT_ABI_ASSERT_SIZE(struct shunt_meta, 16);
