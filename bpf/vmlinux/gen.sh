#!/usr/bin/env bash
# Regenerates the checked-in vmlinux.h for this machine's architecture from
# the running kernel's BTF. The build never does this itself: objects are
# CO-RE, so one header serves every supported kernel (>= 5.15) and the build
# does not depend on the build host's kernel. Run it when a newer kernel type
# is needed, review the diff, and commit it.
set -euo pipefail
arch=$(uname -m)
out="$(dirname "$0")/${arch}/vmlinux.h"
mkdir -p "$(dirname "$out")"
bpftool btf dump file /sys/kernel/btf/vmlinux format c >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out ($(wc -l <"$out") lines) from kernel $(uname -r)"
