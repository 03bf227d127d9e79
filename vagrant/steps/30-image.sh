#!/usr/bin/env bash
# Step 30 (root): the agent's image from deploy/Dockerfile, loaded into the
# kind nodes (nothing is pushed anywhere).
set -euo pipefail
# shellcheck source=vagrant/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$SRC"
DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile -t "$IMAGE" .
kind load docker-image "$IMAGE" --name "$CLUSTER"
