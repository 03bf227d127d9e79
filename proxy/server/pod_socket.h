// The proxy's connections to local pods (the receiving end of a tunnel, the
// L7 layer's upstream) start the same way: a non-blocking socket with the
// proxy's mark, which the pods' TC guards and sockops know it by, bound to
// the client pod's own address when it can be (IP_TRANSPARENT), so that the
// pod sees its real client; the pod's replies to such an address come back
// to this socket by the mark (bpf/tc.bpf.c, agent/mtls/transparent_routing.h).
#pragma once

#include "agent/lib/unique_fd.h"
#include "proxy/tunnel/connect_authority.h"

namespace shunt::proxy {

enum class SourceKept { kNotAsked, kKept, kFailed };

// A socket toward `to`, not yet connected (connect() is the caller's).
// `from` (may be null; its port is ignored): the address to connect from,
// used only when it has `to`'s family; `kept` says whether it was (when it
// failed, the connection comes from the node's address). Invalid fd when no
// socket could be made.
lib::UniqueFd OpenPodSocket(const Destination& to, const Destination* from, SourceKept* kept);

// Where a pod connection the kernel handed to the proxy was going
// (cgroup/getsockopt answers SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST from
// the hand-off's record). False when the kernel has no record of it.
bool OriginalDestination(int fd, bool v6, Destination* d);

// Whether that hand-off's grant is HTTP routes only (SHUNT_MTLS_F_L7): the
// destination node's proxy must judge each request, so the connection
// rides a tunnel or nothing. True also when the kernel does not answer
// (an older data path): no plaintext is ever assumed safe.
bool HandoffNeedsTunnel(int fd, bool v6);

}  // namespace shunt::proxy
