// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* cgroup/setsockopt: options that ask for what only TCP's own send and
 * receive paths give move a short-circuited socket's flow to TCP before
 * the kernel applies them (lib/tcp_fallback.bpf.h). The option itself is
 * never changed or refused. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/tcp_fallback.bpf.h"
#include "lib/mtls_maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SOL_SOCKET 1
#define SOL_TCP 6
#define SO_RCVLOWAT 18
#define SO_TIMESTAMP_OLD 29
#define SO_TIMESTAMPNS_OLD 35
#define SO_TIMESTAMPING_OLD 37
#define SO_ZEROCOPY 60
#define SO_TIMESTAMP_NEW 63
#define SO_TIMESTAMPNS_NEW 64
#define SO_TIMESTAMPING_NEW 65
#define TCP_ULP 31
#define TCP_INQ 36
#define PAGE_SIZE 4096

/* The sockhash key of the socket a sockopt hook runs for (the IPv4
 * addresses of a v4-mapped IPv6 socket too). */
static __always_inline void sock_key_of_bpf_sock(const struct bpf_sock *sk,
						 struct shunt_sock_key *key)
{
	key->local_ip4 = sk->src_ip4;
	key->remote_ip4 = sk->dst_ip4;
	key->local_port = bpf_htons((__u16)sk->src_port);
	key->remote_port = (__u16)sk->dst_port;
}

/* Why setting this option moves a flow to TCP, or 0. `val`: the option's
 * int value (0 when it has none). */
static __always_inline __u32 option_reason(int level, int optname, int val)
{
	if (level == SOL_SOCKET) {
		switch (optname) {
		case SO_RCVLOWAT:
			return val > 1 ? SHUNT_TCP_RCVLOWAT : 0;
		case SO_ZEROCOPY:
			return val ? SHUNT_TCP_ZEROCOPY_SEND : 0;
		case SO_TIMESTAMP_OLD:
		case SO_TIMESTAMPNS_OLD:
		case SO_TIMESTAMPING_OLD:
		case SO_TIMESTAMP_NEW:
		case SO_TIMESTAMPNS_NEW:
		case SO_TIMESTAMPING_NEW:
			return val ? SHUNT_TCP_RECEIVE_CMSG : 0;
		}
	} else if (level == SOL_TCP) {
		if (optname == TCP_INQ)
			return val ? SHUNT_TCP_RECEIVE_CMSG : 0;
		if (optname == TCP_ULP)
			return SHUNT_TCP_ULP;
	}
	return 0;
}

SEC("cgroup/setsockopt")
int shunt_setsockopt(struct bpf_sockopt *ctx)
{
	struct shunt_sock_key key = {};
	struct bpf_sock *sk = ctx->sk;
	int *optval = ctx->optval;
	int val = 0;
	__u32 reason;

	/* Over a page the program sees only the first one: let the kernel
	 * use the caller's buffer as it is. */
	if (ctx->optlen > PAGE_SIZE)
		ctx->optlen = 0;
	if (!sk || sk->protocol != IPPROTO_TCP)
		return 1;
	if ((void *)(optval + 1) <= ctx->optval_end)
		val = *optval;
	reason = option_reason(ctx->level, ctx->optname, val);
	if (!reason)
		return 1;
	sock_key_of_bpf_sock(sk, &key);
	flow_to_tcp(&key, reason, bpf_ktime_get_ns());
	return 1;
}

#define TCP_ZEROCOPY_RECEIVE 35

/* cgroup/getsockopt, after the kernel answered: TCP_ZEROCOPY_RECEIVE maps
 * pages of the TCP receive queue, which never holds redirected bytes. The
 * kernel runs this hook for that option itself (with its own buffer) even
 * though it skips the usual one. The answer is left as it is. */
#define SOL_IP 0
#define SO_ORIGINAL_DST 80
#define AF_INET 2

/* The hand-off of the pod at the far end of a socket the proxy accepted
 * (connect4 handed it off, sockops filed it under the pod socket's own
 * address), or NULL. */
static __always_inline struct shunt_mtls_addr *handoff_of(struct bpf_sock *sk)
{
	struct shunt_mtls_addr peer = {};

	peer.ip4 = sk->dst_ip4;
	peer.port = (__be16)(sk->dst_port);
	return bpf_map_lookup_elem(&shunt_mtls_orig_v1, &peer);
}

/* getsockopt(SOL_IP, SO_ORIGINAL_DST) on a socket the proxy accepted from a
 * pod that connect4 handed off: where the pod was going, as netfilter's
 * REDIRECT would answer (sockaddr_in), with no netfilter involved. A socket
 * that is not such a connection keeps the kernel's answer (ENOENT, or
 * ENOPROTOOPT without conntrack): the proxy refuses it. */
static __always_inline int original_dst(struct bpf_sockopt *ctx, struct bpf_sock *sk)
{
	struct shunt_mtls_addr *orig;
	struct sockaddr_in *out = ctx->optval;

	if ((void *)(out + 1) > ctx->optval_end)
		return 1; /* the caller's buffer is too small: its error stands */
	orig = handoff_of(sk);
	if (!orig)
		return 1;
	out->sin_family = AF_INET;
	out->sin_port = orig->port;
	out->sin_addr.s_addr = orig->ip4;
	__builtin_memset(out->__pad, 0, sizeof(out->__pad));
	ctx->optlen = sizeof(*out);
	ctx->retval = 0;
	return 1;
}

#define SOL_IPV6 41
#define IP6T_SO_ORIGINAL_DST 80
#define AF_INET6 10

/* handoff_of() for a native IPv6 socket. */
static __always_inline struct shunt_mtls_addr6 *handoff6_of(struct bpf_sock *sk)
{
	struct shunt_mtls_addr6 peer = {};
	__u32 w0 = sk->dst_ip6[0], w1 = sk->dst_ip6[1], w2 = sk->dst_ip6[2], w3 = sk->dst_ip6[3];

	peer.ip6[0] = w0;
	peer.ip6[1] = w1;
	peer.ip6[2] = w2;
	peer.ip6[3] = w3;
	peer.port = (__be16)(sk->dst_port);
	return bpf_map_lookup_elem(&shunt_mtls_orig6_v1, &peer);
}

/* The same for IPv6: getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST), a
 * sockaddr_in6. */
static __always_inline int original_dst6(struct bpf_sockopt *ctx, struct bpf_sock *sk)
{
	struct shunt_mtls_addr6 *orig;
	struct sockaddr_in6 *out = ctx->optval;

	if ((void *)(out + 1) > ctx->optval_end)
		return 1;
	orig = handoff6_of(sk);
	if (!orig)
		return 1;
	__builtin_memset(out, 0, sizeof(*out));
	out->sin6_family = AF_INET6;
	out->sin6_port = orig->port;
	__builtin_memcpy(&out->sin6_addr, orig->ip6, sizeof(orig->ip6));
	ctx->optlen = sizeof(*out);
	ctx->retval = 0;
	return 1;
}

/* getsockopt(SOL_IP or SOL_IPV6, SHUNT_SO_HANDOFF_FLAGS): the hand-off's
 * SHUNT_MTLS_F_* (a __u32), from the entry SO_ORIGINAL_DST reads; a socket
 * that is no hand-off keeps the kernel's ENOPROTOOPT. */
static __always_inline int handoff_flags(struct bpf_sockopt *ctx, struct bpf_sock *sk, bool v6)
{
	__u32 *out = ctx->optval;
	__u16 flags;

	if ((void *)(out + 1) > ctx->optval_end)
		return 1;
	if (v6) {
		struct shunt_mtls_addr6 *orig = handoff6_of(sk);

		if (!orig)
			return 1;
		flags = orig->flags;
	} else {
		struct shunt_mtls_addr *orig = handoff_of(sk);

		if (!orig)
			return 1;
		flags = orig->flags;
	}
	*out = flags;
	ctx->optlen = sizeof(*out);
	ctx->retval = 0;
	return 1;
}

SEC("cgroup/getsockopt")
int shunt_getsockopt(struct bpf_sockopt *ctx)
{
	struct shunt_sock_key key = {};
	struct bpf_sock *sk = ctx->sk;

	if (ctx->level == SOL_IP && ctx->optname == SO_ORIGINAL_DST && sk &&
	    sk->protocol == IPPROTO_TCP)
		return original_dst(ctx, sk);
	if (ctx->level == SOL_IPV6 && ctx->optname == IP6T_SO_ORIGINAL_DST && sk &&
	    sk->protocol == IPPROTO_TCP)
		return original_dst6(ctx, sk);
	if ((ctx->level == SOL_IP || ctx->level == SOL_IPV6) &&
	    ctx->optname == SHUNT_SO_HANDOFF_FLAGS && sk && sk->protocol == IPPROTO_TCP)
		return handoff_flags(ctx, sk, ctx->level == SOL_IPV6);
	if (ctx->level != SOL_TCP || ctx->optname != TCP_ZEROCOPY_RECEIVE || !sk ||
	    sk->protocol != IPPROTO_TCP)
		return 1;
	sock_key_of_bpf_sock(sk, &key);
	flow_to_tcp(&key, SHUNT_TCP_ZEROCOPY_RECEIVE, bpf_ktime_get_ns());
	return 1;
}
