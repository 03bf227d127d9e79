// shuntctl ca init and certs: the cluster CA for mutual TLS, and the
// workload certificates the agent holds (docs/mtls.md).
#pragma once

#include "absl/status/status.h"
#include "tools/shuntctl/cli.h"

namespace shunt::ctl {

// ca init --dir DIR: DIR/ca.crt and DIR/ca.key, never overwritten.
absl::Status CmdCa(const Options& o);
// certs: each local identity's SPIFFE ID, serial, expiry and renewal, from
// the agent (keys never leave it).
absl::Status CmdCerts(const Options& o);

}  // namespace shunt::ctl
