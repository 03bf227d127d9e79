#!/usr/bin/env bash
# Step 40 (root): deploy/kubernetes, then the bookstore example.
set -euo pipefail
# shellcheck source=vagrant/lib.sh
. "$(dirname "$0")/../lib.sh"
cd "$SRC"
# The cluster CA for mutual TLS between nodes (shunt-config mtls: strict),
# once: a Secret the agents mount. Made with shuntctl from the image, into a
# directory only root reads; kept across runs so the cluster keeps its CA.
k apply -f deploy/kubernetes/namespace.yaml
if ! k -n shunt-system get secret shunt-ca >/dev/null 2>&1; then
  ca=/root/shunt-ca
  if [[ ! -f $ca/ca.key ]]; then
    install -d -m 0700 "$ca"
    docker run --rm --entrypoint shuntctl -v "$ca:/ca" "$IMAGE" ca init --dir /ca
  fi
  k -n shunt-system create secret generic shunt-ca \
    --from-file=ca.crt="$ca/ca.crt" --from-file=ca.key="$ca/ca.key"
fi
k apply -k deploy/kubernetes
k wait --for condition=established --timeout 60s \
  crd/traffictargets.access.smi-spec.io crd/httproutegroups.specs.smi-spec.io \
  crd/tcproutes.specs.smi-spec.io crd/udproutes.specs.smi-spec.io crd/trafficsplits.split.smi-spec.io
if ! k -n shunt-system rollout status daemonset/shunt-agent --timeout 180s; then
  echo "WARNING: the agent did not become ready (the scenarios will fail). Its log:" >&2
  k -n shunt-system logs daemonset/shunt-agent -c agent --tail 20 >&2 || true
fi
k apply -k deploy/examples/bookstore
for d in bookstore/bookstore-v1 bookstore/bookstore-v2 bookbuyer/bookbuyer bookthief/bookthief; do
  k -n "${d%/*}" rollout status "deployment/${d#*/}" --timeout 180s
done
k get pods -A -o wide
