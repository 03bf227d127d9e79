#!/usr/bin/env bash
# Installs every Debian 12 package Shunt needs to build, test, benchmark and
# run its quickstart. Idempotent; run as root.
set -euo pipefail
# usage: install-deps.sh [run|all]
#   run  what the quickstart needs: the build, iproute2 and redis for the demo
#   all  (default) also the test suite and benchmark peers
profile=${1:-all}
packages=(
  # build
  build-essential cmake pkg-config clang
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libabsl-dev libfmt-dev libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev libre2-dev libasio-dev libboost-dev
  # the kube source's HTTPS client (libcurl over OpenSSL)
  libcurl4-openssl-dev
  # workload certificates and mutual TLS between nodes (OpenSSL 3), the
  # tunnel's HTTP/2 CONNECT streams (libnghttp2)
  libssl-dev libnghttp2-dev
  # the L7 layer's HTTP/1.x parsing (Node's http-parser)
  libhttp-parser-dev
  # demo pods and their traffic; tcpdump: the quickstart's capture of the
  # link between its two nodes, searched for plaintext (and the e2e tests')
  iproute2 procps util-linux redis-server redis-tools curl tcpdump
  # the quickstart's HTTP server (python3 -m http.server) behind an HTTP policy
  python3
)
case "$profile" in
  run) ;;
  # prometheus: its promtool checks /metrics; python3-jsonschema checks TrafficMetrics (e2e)
  # dnsmasq-base, bind9-dnsutils: a real DNS server and dig through a UDP service (e2e)
  # iptables: the kube-proxy-style baseline of shunt-service-bench; nftables:
  # its nft removes the tables afterwards (a flushed iptables-nft table keeps
  # its hooks, and conntrack, in place for the other arms); conntrack: empties
  # the table between rounds
  # python3, openssl: the fake kube-apiserver of test/kubeapi and its certificates.
  # kubernetes-client: kubectl, the independent client of those tests and the
  # `kubectl kustomize` of deploy.manifests. Only when no kubectl is on PATH:
  # Debian 12's is 1.20, and a newer one already installed serves as well.
  # libclang-rt-dev: clang's libFuzzer and sanitizer runtimes (tools/fuzz.sh;
  # clang only recommends them); ccache: keeps the fuzz build incremental.
  # nginx-light: the compatibility suite's sendfile server, behind HAProxy's splicing;
  # golang-go: its Go io.Copy proxy (splice from the first read), built by the test (e2e)
  # iperf3: bulk transfer through the mTLS tunnel (e2e); nghttp2-client: h2load, HTTP/2 load (e2e); python3-websockets: a WebSocket through the L7 layer (e2e); python3-h2: an HTTP/2 backend that fails on purpose (e2e); wrk: HTTP load for shunt-l7-bench
  all) packages+=(iperf3 clang-format libclang-rt-dev ccache libgtest-dev libgmock-dev haproxy nginx-light golang-go prometheus python3-jsonschema nghttp2-client python3-websockets python3-h2 wrk dnsmasq-base bind9-dnsutils iptables nftables conntrack python3 openssl)
    # deploy.manifests (tools/manifest-check): Node.js. Only when missing: a
    # machine may have newer ones from elsewhere, which Debian's packages
    # would conflict with (nodesource's nodejs bundles npm).
    if ! command -v node >/dev/null; then packages+=(nodejs npm)
    elif ! command -v npm >/dev/null; then packages+=(npm); fi
    command -v kubectl >/dev/null || packages+=(kubernetes-client) ;;
  *) echo "usage: $0 [run|all]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's redis/nginx/haproxy units would start system-wide daemons on
  # well-known ports; tests start their own instances inside pod namespaces.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The manifest check's npm packages (exact versions from its package-lock),
# installed again only when node_modules is missing or the lock changed.
if [ "$profile" = all ]; then
  here=$(cd "$(dirname "$0")" && pwd)
  mc=$here/manifest-check
  stamp=$mc/node_modules/.shunt-lock-sha256
  want=$(sha256sum "$mc/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    npm ci --prefix "$mc" --no-audit --no-fund
    echo "$want" >"$stamp"
  fi
fi
