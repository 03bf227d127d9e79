/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The receiving side of mTLS at the pod's TC guard (docs/mtls.md): with the
 * hand-off on, pods on other nodes reach local pods only through the nodes'
 * proxies, whose connections come from the node's own address. A new TCP
 * connection straight from a remote pod's address is plaintext that went
 * around them: strict mode drops it, permissive mode lets it in and reports
 * it (a meshless node's pod). UDP is not tunnelled and not judged here. */
#pragma once
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "counters.bpf.h"
#include "mtls_maps.bpf.h"

/* SHUNT_MTLS_* in force, OFF when there is no config. */
static __always_inline __u32 mtls_mode(void)
{
	__u32 zero = 0;
	struct shunt_mtls_config *m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);

	return m ? m->mode : SHUNT_MTLS_OFF;
}

/* Whether the proxy's L7 layer is on: the agent names its port only while
 * the proxy is ready (connect4 then sends HTTP-routes-only grants to it; it
 * connects to local pods from other local pods' addresses too). With mTLS
 * too, or alone (--mtls=off: the mode stays OFF, nothing leaves the node
 * through the proxy). */
static __always_inline bool mtls_l7_on(void)
{
	__u32 zero = 0;
	struct shunt_mtls_config *m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);

	return m && m->proxy_ip4 && m->l7_port;
}

/* The same for native IPv6: the proxy also has an IPv6 address (the agent
 * was given one in --node-ip), where its L7 port listens too. */
static __always_inline bool mtls_l7_on6(void)
{
	__u32 zero = 0;
	struct shunt_mtls_config *m = bpf_map_lookup_elem(&shunt_mtls_config_v1, &zero);

	return m && m->l7_port &&
	       (m->proxy_ip6[0] | m->proxy_ip6[1] | m->proxy_ip6[2] | m->proxy_ip6[3]);
}

/* For a new TCP connection from a remote pod: the mode it meets, counted
 * (the caller reports the event and drops when it is STRICT). */
static __always_inline __u32 mtls_plaintext_verdict(void)
{
	__u32 mode = mtls_mode();

	if (mode == SHUNT_MTLS_STRICT)
		counter_add(SHUNT_CTR_MTLS_PLAINTEXT_DROPPED, 1);
	else if (mode == SHUNT_MTLS_PERMISSIVE)
		counter_add(SHUNT_CTR_MTLS_PLAINTEXT_ACCEPTED, 1);
	return mode;
}
