#!/usr/bin/env bash
# Shared settings of the vagrant/ scripts; sourced, not run.
# shellcheck disable=SC2034  # the variables are used by the scripts that source this
# Pinned tools: versions and the sha256 of the linux-amd64 binaries as
# published by the projects (kind's release page, dl.k8s.io's .sha256 files).
KIND_VERSION=v0.27.0
KIND_SHA256=a6875aaea358acf0ac07786b1a6755d08fd640f4c79b7a2e46681cc13f49a04b
# kind v0.27.0's image for Kubernetes 1.32.2, by digest (its release notes).
KIND_NODE_IMAGE=kindest/node:v1.32.2@sha256:f226345927d7e348497136874b6d207e0b32cc52154ad8323129352923a3142f
KUBECTL_VERSION=v1.32.2
KUBECTL_SHA256=4f6a959dcc5b702135f8354cc7109b542a2933c46b808b248a214c1f69f817ea

CLUSTER=${CLUSTER:-shunt}
KCTX=kind-$CLUSTER
IMAGE=${IMAGE:-shunt/agent:dev}
# The repository inside the VM (the Vagrantfile's rsync target); the scripts
# also work from any checkout: SRC defaults to the one they live in.
SRC=${SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

k() { kubectl --context "$KCTX" "$@"; }
say() { printf '\n== %s\n' "$*"; }
die() {
  echo "ERROR: $*" >&2
  exit 1
}
