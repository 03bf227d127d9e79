#!/usr/bin/env bash
# Step 20 (root): the kind cluster, a bpffs per node, pods allowed on both.
set -euo pipefail
# shellcheck source=vagrant/lib.sh
. "$(dirname "$0")/../lib.sh"
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --image "$KIND_NODE_IMAGE" \
    --config "$SRC/vagrant/kind-config.yaml" --wait 180s
fi
# Each node gets a BPF filesystem of its own at /sys/fs/bpf (the DaemonSet's
# hostPath): both nodes share the VM's kernel, and separate bpffs instances
# keep their agents' pins apart, as on separate machines. Redone after a VM
# reboot (mounts do not survive the node containers' restart).
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf'
done
# Two schedulable nodes: same-node and cross-node pairs both exist.
k taint nodes --all node-role.kubernetes.io/control-plane:NoSchedule- 2>/dev/null || true
k get nodes -o wide
