/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flags of the send sk_msg is deciding. The kernel does not pass them
 * to sk_msg, and an urgent byte (MSG_OOB) redirected into the peer's psock
 * queue would arrive in band, without SIGURG. sk_msg runs inside the
 * sending task's system call, whose user registers the kernel saves at the
 * top of the task's kernel stack (task_pt_regs()): the call number and its
 * flags argument are read from there, on x86_64 only (other architectures
 * keep the after-the-send watch of sock_watch.bpf.c).
 *
 * Where that frame sits depends on the kernel's build (THREAD_SIZE is 16 KiB,
 * 32 KiB with KASAN; FRED kernels leave 16 bytes above it), so the first
 * sends try each place and keep the one that holds a 64-bit user frame
 * (user code and stack segments) of a send call; every later read checks
 * the same. A frame not recognised (32-bit tasks, io_uring, sendfile) reads
 * as "no flags known", as before. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define SHUNT_MSG_OOB 0x1

/* Set by the agent at load time: 1 on x86_64. */
const volatile __u8 send_flags_from_regs = 0;

/* The x86_64 user register frame from r10 on (struct pt_regs, whose layout
 * is the ptrace ABI), as eight-byte words. */
struct shunt_x86_user_frame {
	__u64 r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

#define SHUNT_X86_FRAME_SKIP (7 * 8) /* r15..r11 come before r10 */
#define SHUNT_X86_PT_REGS_SIZE (21 * 8)
#define SHUNT_X86_USER_CS 0x33
#define SHUNT_X86_USER_DS 0x2b
#define SHUNT_X86_NR_WRITE 1
#define SHUNT_X86_NR_WRITEV 20
#define SHUNT_X86_NR_SENDTO 44
#define SHUNT_X86_NR_SENDMSG 46
#define SHUNT_X86_NR_SENDMMSG 307

/* Offset of the frame from the stack's base, once found (0: not yet). */
__u32 user_frame_offset = 0;

static __always_inline bool read_frame(__u64 stack, __u32 offset, struct shunt_x86_user_frame *f)
{
	if (bpf_probe_read_kernel(f, sizeof(*f), (void *)(stack + offset + SHUNT_X86_FRAME_SKIP)))
		return false;
	return (__u16)f->cs == SHUNT_X86_USER_CS && (__u16)f->ss == SHUNT_X86_USER_DS;
}

static __always_inline bool is_send_call(__u64 nr)
{
	return nr == SHUNT_X86_NR_SENDTO || nr == SHUNT_X86_NR_SENDMSG ||
	       nr == SHUNT_X86_NR_SENDMMSG || nr == SHUNT_X86_NR_WRITE || nr == SHUNT_X86_NR_WRITEV;
}

/* The send's flags if this is a sendto/sendmsg/sendmmsg call of a 64-bit
 * task, else 0. */
static __always_inline __u64 current_send_flags(void)
{
	struct task_struct *task;
	struct shunt_x86_user_frame f;
	__u32 offset = user_frame_offset;
	__u64 stack;
	int i;

	if (!send_flags_from_regs)
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	stack = (__u64)BPF_CORE_READ(task, stack);
	if (!stack)
		return 0;
	if (offset) {
		if (!read_frame(stack, offset, &f))
			return 0;
	} else {
		/* 16 or 32 KiB of stack, with or without FRED's 16 bytes. */
		for (i = 0; i < 4; i++) {
			offset = ((i & 2) ? 32768 : 16384) - ((i & 1) ? 16 : 0) -
				 SHUNT_X86_PT_REGS_SIZE;
			if (read_frame(stack, offset, &f) && is_send_call(f.orig_ax)) {
				user_frame_offset = offset;
				break;
			}
		}
		if (i == 4)
			return 0;
	}
	if (f.orig_ax == SHUNT_X86_NR_SENDMSG)
		return f.dx;
	if (f.orig_ax == SHUNT_X86_NR_SENDTO || f.orig_ax == SHUNT_X86_NR_SENDMMSG)
		return f.r10;
	return 0;
}
