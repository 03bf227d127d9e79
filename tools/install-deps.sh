#!/usr/bin/env bash
# Installs every Debian 12 package Shunt needs to build, test, benchmark and
# run its quickstart. Idempotent; run as root.
set -euo pipefail
packages=(
  # build
  build-essential cmake pkg-config clang llvm
  libbpf-dev bpftool libelf-dev zlib1g-dev linux-libc-dev
  libabsl-dev libfmt-dev libspdlog-dev libyaml-cpp-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # tests, quickstart and benchmarks: namespaces and real peers
  iproute2 procps util-linux redis-server redis-tools nginx-light curl haproxy
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian's redis/nginx/haproxy units would start system-wide daemons on
  # well-known ports; tests start their own instances inside pod namespaces.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
fi
