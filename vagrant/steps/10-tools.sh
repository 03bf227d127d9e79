#!/usr/bin/env bash
# Step 10 (root): a container engine (Debian's docker.io), kind and kubectl
# (pinned release binaries, checked against their sha256 before install).
set -euo pipefail
# shellcheck source=vagrant/lib.sh
. "$(dirname "$0")/../lib.sh"
[ "$(printf '%s\n' 6.6 "$(uname -r | cut -d- -f1)" | sort -V | head -1)" = 6.6 ] ||
  die "kernel $(uname -r) is older than 6.6: run steps/00-kernel.sh and reboot first"
[ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ] || die "/sys/fs/cgroup is not cgroup v2 (kind and the agent need the unified hierarchy)"

export DEBIAN_FRONTEND=noninteractive
command -v docker >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends docker.io ca-certificates curl; }
systemctl enable --now docker
usermod -aG docker vagrant 2>/dev/null || true

# fetch URL SHA256 DEST: download, check, install; skipped when DEST already
# has that checksum.
fetch() {
  local url=$1 sum=$2 dest=$3 tmp
  if [ -x "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return; fi
  tmp=$(mktemp)
  curl -fsSL --retry 3 -o "$tmp" "$url"
  echo "$sum  $tmp" | sha256sum -c - || die "$url: sha256 mismatch"
  install -m 0755 "$tmp" "$dest"
  rm -f "$tmp"
}
fetch "https://github.com/kubernetes-sigs/kind/releases/download/$KIND_VERSION/kind-linux-amd64" "$KIND_SHA256" /usr/local/bin/kind
fetch "https://dl.k8s.io/release/$KUBECTL_VERSION/bin/linux/amd64/kubectl" "$KUBECTL_SHA256" /usr/local/bin/kubectl
kind version
kubectl version --client
