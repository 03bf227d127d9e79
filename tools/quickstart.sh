#!/usr/bin/env bash
# Shunt quickstart: installs what it needs, builds, and runs a demo node on
# this machine — two pods (network namespaces + cgroups) talking through the
# agent's same-node short-circuit — then shows what shuntctl sees; an HTTP
# policy judged per request by the node's proxy; last, a second node whose
# pod the client reaches through mutual TLS between the nodes' proxies
# (--mtls=strict).
#
# As root (it never calls sudo: a fresh Debian 12 root shell has none):
#   tools/quickstart.sh          run the demo and clean up on exit
#   tools/quickstart.sh --keep   leave the demo running to explore
#   tools/quickstart.sh --down   tear down a demo left by --keep
#
# It touches nothing outside its own names: netns shunt-demo-*, cgroup
# <cgroup2>/shunt-demo, bpffs /sys/fs/bpf/shunt-demo and shunt-demo-node2,
# /run/shunt-demo, and
# its build directory, build-quickstart/ (or $BUILD_DIR): a Release build
# without tests, kept apart from tools/test.sh's build/ so that neither
# changes what the other builds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD_DIR:-$ROOT/build-quickstart}
STATE=/run/shunt-demo
BPFFS=/sys/fs/bpf/shunt-demo
BPFFS2=/sys/fs/bpf/shunt-demo-node2
NODE=node-1
# The link between the two nodes (pods.yaml's status.hostIP).
NODE1_IP=192.168.244.1
NODE2_IP=192.168.244.2
MODE=run
case "${1:-}" in
  --keep) MODE=keep ;;
  --down) MODE=down ;;
  "") ;;
  *) echo "usage: $0 [--keep|--down]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (network namespaces, cgroups and BPF need it)" >&2; exit 1; }

CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts)
[ -n "$CG2" ] || { echo "quickstart: no cgroup2 mount found" >&2; exit 1; }
CG=$CG2/shunt-demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

down() {
  if [ -f "$STATE/pids" ]; then
    while read -r pid; do
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true  # ours: reap quietly
    done <"$STATE/pids"
  fi
  for fs in "$BPFFS" "$BPFFS2"; do
    if [ -x "$BUILD/agent/shunt-agent" ] && [ -d "$fs" ]; then
      "$BUILD/agent/shunt-agent" --uninstall --bpffs "$fs" >/dev/null 2>&1 || true
    fi
  done
  for ns in shunt-demo-client shunt-demo-server shunt-demo-remote shunt-demo-node shunt-demo-node2; do
    ip netns del "$ns" 2>/dev/null || true
  done
  # Each node's pod<uid> cgroups and its proxy's (and those of earlier
  # versions' layout), then the nodes' roots, then ours.
  for d in "$CG"/node-*/* "$CG"/node-* "$CG"/pod* "$CG"/client "$CG"/server "$CG"; do
    [ -d "$d" ] || continue
    while read -r pid; do kill -9 "$pid" 2>/dev/null || true; done <"$d/cgroup.procs"
    for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
  done
  rm -rf "$STATE"
}

if [ "$MODE" = down ]; then down; echo "demo removed"; exit 0; fi

start=$(date +%s)
say "1/7 packages (tools/install-deps.sh)"
bash tools/install-deps.sh run
say "2/7 build (cmake, Release, in $BUILD)"
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSHUNT_BUILD_TESTS=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target shunt-agent shunt-proxy shuntctl 2>&1 | grep -E "error|warning|Built target" || true
[ -x "$BUILD/agent/shunt-agent" ] && [ -x "$BUILD/agent/shunt-proxy" ] || { echo "quickstart: build failed" >&2; exit 1; }

down  # a previous run's leftovers
[ "$MODE" = keep ] || trap 'say "cleaning up"; down' EXIT
mkdir -p "$STATE/config"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf

say "3/7 two nodes: node-1 with demo/client 10.244.1.2 and demo/server 10.244.1.3, node-2 with demo/remote 10.244.2.2"
# Each node is a network namespace (its pods' veths end there, its agent
# runs there); the two are linked as two machines on one network would be.
for node in shunt-demo-node shunt-demo-node2; do
  ip netns add "$node"
  ip -n "$node" link set lo up
  ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
done
ip -n shunt-demo-node addr add 10.244.1.1/32 dev lo
ip -n shunt-demo-node2 addr add 10.244.2.1/32 dev lo
ip link add shdemo-link netns shunt-demo-node type veth peer name shdemo-link netns shunt-demo-node2
ip -n shunt-demo-node addr add "$NODE1_IP/30" dev shdemo-link
ip -n shunt-demo-node2 addr add "$NODE2_IP/30" dev shdemo-link
ip -n shunt-demo-node link set shdemo-link up
ip -n shunt-demo-node2 link set shdemo-link up
ip -n shunt-demo-node route add 10.244.2.0/24 via "$NODE2_IP"
ip -n shunt-demo-node2 route add 10.244.1.0/24 via "$NODE1_IP"
# Each pod's cgroup is named after its metadata.uid (pods.yaml), as the
# kubelet names pod cgroups: that is how the agent finds the pod's namespace.
# Each node's agent serves its own cgroup subtree.
declare -A UID_OF=([client]=5b1d6c2e-7a3f-4c1e-9d2a-0c1e0000a001 [server]=5b1d6c2e-7a3f-4c1e-9d2a-0c1e0000a002
                   [remote]=5b1d6c2e-7a3f-4c1e-9d2a-0c1e0000a003)
declare -A NODE_OF=([client]=node-1 [server]=node-1 [remote]=node-2)
declare -A IP_OF=([client]=10.244.1.2 [server]=10.244.1.3 [remote]=10.244.2.2)
i=0
for pod in client server remote; do
  ip=${IP_OF[$pod]}
  ns=shunt-demo-$pod
  node_ns=shunt-demo-node; [ "${NODE_OF[$pod]}" = node-2 ] && node_ns=shunt-demo-node2
  mkdir -p "$CG/${NODE_OF[$pod]}/pod${UID_OF[$pod]}"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip link add "shdemo$i" netns "$node_ns" type veth peer name eth0 netns "$ns"
  ip -n "$ns" addr add "$ip/32" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default dev eth0
  ip -n "$node_ns" link set "shdemo$i" up
  # proxy_delay=0: proxy ARP would otherwise answer after up to 0.8 s
  ip netns exec "$node_ns" sysctl -qw "net.ipv4.conf.shdemo$i.proxy_arp=1" "net.ipv4.neigh.shdemo$i.proxy_delay=0"
  ip -n "$node_ns" route add "$ip/32" dev "shdemo$i"
  i=$((i + 1))
done
cp deploy/examples/demo/pods.yaml deploy/examples/demo/policy.yaml deploy/examples/demo/http-policy.yaml \
  deploy/examples/demo/service.yaml "$STATE/config/"
echo "   manifests: $STATE/config/ (deploy/examples/demo/pods.yaml, policy.yaml, http-policy.yaml, service.yaml)"

# Runs a command inside a pod: its cgroup first, then its network namespace.
in_pod() { local pod=$1; shift; (echo "$BASHPID" >"$CG/${NODE_OF[$pod]}/pod${UID_OF[$pod]}/cgroup.procs"; exec ip netns exec "shunt-demo-$pod" "$@"); }
# Each pod's sandbox ("pause") process: the first in its cgroup, holding its
# network namespace for the pod's life, as a container runtime's is.
for pod in client server remote; do
  in_pod "$pod" sleep infinity &
  echo $! >>"$STATE/pids"
done

say "4/7 agents, one per node, with mutual TLS between nodes (--mtls=strict)"
# The cluster's CA (a Secret in Kubernetes): each agent issues its local
# pods' SPIFFE certificates from it and hands them to its shunt-proxy.
"$BUILD/tools/shuntctl/shuntctl" ca init --dir "$STATE/ca"
# The agent runs with the node's network, as a hostNetwork DaemonSet pod
# does, so the node side of each pod's veth carries its TC guards.
nsenter --net=/run/netns/shunt-demo-node "$BUILD/agent/shunt-agent" --node "$NODE" \
  --config-dir "$STATE/config" --cgroup-root "$CG/node-1" \
  --bpffs "$BPFFS" --api-socket "$STATE/agent.sock" --mode enforce \
  --mtls=strict --ca-dir "$STATE/ca" --node-ip "$NODE1_IP" \
  --metrics-addr 127.0.0.1:9464 >"$STATE/agent.log" 2>&1 &
echo $! >>"$STATE/pids"
nsenter --net=/run/netns/shunt-demo-node2 "$BUILD/agent/shunt-agent" --node node-2 \
  --config-dir "$STATE/config" --cgroup-root "$CG/node-2" \
  --bpffs "$BPFFS2" --api-socket "$STATE/agent-node2.sock" --mode enforce \
  --mtls=strict --ca-dir "$STATE/ca" --node-ip "$NODE2_IP" >"$STATE/agent-node2.log" 2>&1 &
echo $! >>"$STATE/pids"
CTL=("$BUILD/tools/shuntctl/shuntctl" --bpffs "$BPFFS" --api-socket "$STATE/agent.sock")
CTL2=("$BUILD/tools/shuntctl/shuntctl" --bpffs "$BPFFS2" --api-socket "$STATE/agent-node2.sock")
# Ready: each node's pods meshed and its proxy handed connections.
for _ in $(seq 100); do
  "${CTL[@]}" status -o json 2>/dev/null | grep -q '"handoff": true' &&
    "${CTL2[@]}" status -o json 2>/dev/null | grep -q '"handoff": true' &&
    "${CTL[@]}" endpoints 2>/dev/null | grep -q server && break
  sleep 0.1
done
"${CTL[@]}" endpoints

say "5/7 traffic: redis-server in demo/server, redis-benchmark in demo/client to the Service demo/redis (10.96.0.10)"
in_pod server redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
  --appendonly no >"$STATE/redis.log" 2>&1 &
echo $! >>"$STATE/pids"
# Wait for the listener itself: a connection refused while redis starts
# would count as a failure against the backend's latency score.
for _ in $(seq 100); do ip netns exec shunt-demo-server ss -Hltn 'sport = :6379' | grep -q . && break; sleep 0.1; done
veth_before=$(ip -n shunt-demo-node -s -j link show dev shdemo0 | grep -o '"bytes":[0-9]*' | head -1 | cut -d: -f2)
in_pod client redis-benchmark -h 10.96.0.10 -p 6379 -n 50000 -c 10 -d 128 -q -t set,get
veth_after=$(ip -n shunt-demo-node -s -j link show dev shdemo0 | grep -o '"bytes":[0-9]*' | head -1 | cut -d: -f2)

say "SMI policy (enforce mode): demo/client may reach demo/server on 6379, nothing else"
"${CTL[@]}" policy
echo
"${CTL[@]}" policy check --from demo/client --to demo/server --port 6379
echo
"${CTL[@]}" policy check --from demo/server --to demo/client --port 6379
echo
echo "   the server pod tries to open a connection to the client pod:"
if in_pod server redis-cli -h 10.244.1.2 -p 6379 ping 2>&1 | sed 's/^/   /'; then :; fi
echo
"${CTL[@]}" drops

say "services: 10.96.0.10:6379 resolved to the pod at connect() (docs/services.md)"
"${CTL[@]}" services
echo
"${CTL[@]}" lb explain demo/redis

say "telemetry: every flow, measured in the kernel (docs/telemetry.md)"
"${CTL[@]}" flows --to demo/server --state closed | head -8
echo
"${CTL[@]}" stat edge
echo
echo "   Prometheus metrics (from the node's network namespace, where the agent listens):"
ip netns exec shunt-demo-node curl -s http://127.0.0.1:9464/metrics \
  | grep -E '^shunt_flows_total\{.*result="success"' | head -3 | sed 's/^/   /' || true

say "shuntctl status"
"${CTL[@]}" status
redirected=$("${CTL[@]}" status -o json | sed -n 's/.*"bytes_redirected": \([0-9]*\).*/\1/p')
echo
echo "Proof from outside: the client pod's veth received $((veth_after - veth_before)) bytes during the"
echo "benchmark, while $redirected payload bytes went socket to socket (counters above)."

say "6/7 HTTP routes (enforce mode): demo/client may GET /api/... on demo/server:8080, nothing else (docs/l7.md)"
mkdir -p "$STATE/www/api" "$STATE/www/admin"
echo '[{"title": "Dune"}, {"title": "Solaris"}]' >"$STATE/www/api/books.json"
echo "not for demo/client" >"$STATE/www/admin/keys.txt"
in_pod server python3 -m http.server 8080 --bind 0.0.0.0 --directory "$STATE/www" >"$STATE/http.log" 2>&1 &
echo $! >>"$STATE/pids"
for _ in $(seq 100); do ip netns exec shunt-demo-server ss -Hltn 'sport = :8080' | grep -q . && break; sleep 0.1; done
# Two requests on one connection: the grant names HTTP routes, so the kernel
# sent the connection to node-1's proxy, which judges each request.
echo "   curl http://10.244.1.3:8080/api/books.json http://10.244.1.3:8080/admin/keys.txt (one connection):"
in_pod client curl -s -w '\n-> %{http_code}, new connections: %{num_connects}\n' http://10.244.1.3:8080/api/books.json \
  --next -s -D "$STATE/denied.headers" -w '-> %{http_code}, new connections: %{num_connects}\n' \
  http://10.244.1.3:8080/admin/keys.txt | sed '/^$/d; s/^/   /'
grep -i '^x-shunt-denied' "$STATE/denied.headers" | sed 's/^/   the proxy said: /'
echo "   the server's own log (it never saw the denied request):"
sed -n 's/^/   /p' "$STATE/http.log" | grep -v '^   Serving' || true
echo
# The proxy reports its denials to the agent each second.
for _ in $(seq 30); do "${CTL[@]}" drops | grep -q ' l7 ' && break; sleep 0.1; done
"${CTL[@]}" drops | grep -E 'TIME|l7' || true
echo
"${CTL[@]}" flows --path l7 --to demo/server | head -4

say "7/7 across nodes: demo/client -> demo/remote (10.244.2.2, node-2) through mutual TLS (docs/mtls.md)"
in_pod remote redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
  --appendonly no >"$STATE/redis-remote.log" 2>&1 &
echo $! >>"$STATE/pids"
for _ in $(seq 100); do ip netns exec shunt-demo-remote ss -Hltn 'sport = :6379' | grep -q . && break; sleep 0.1; done
# Everything that crosses the link between the nodes, captured while the
# client writes a value it can look for.
ip netns exec shunt-demo-node tcpdump -i shdemo-link -s 0 -U -w "$STATE/link.pcap" tcp >/dev/null 2>&1 &
tcpdump_pid=$!
for _ in $(seq 50); do [ -s "$STATE/link.pcap" ] && break; sleep 0.1; done
marker="demo-secret-$RANDOM$RANDOM"
in_pod client redis-cli -h 10.244.2.2 -p 6379 set greeting "$marker" | sed 's/^/   SET: /'
in_pod client redis-cli -h 10.244.2.2 -p 6379 get greeting | sed 's/^/   GET: /'
in_pod client redis-benchmark -h 10.244.2.2 -p 6379 -n 5000 -c 4 -d 128 -q -t set,get
kill "$tcpdump_pid"; wait "$tcpdump_pid" 2>/dev/null || true
packets=$(tcpdump -r "$STATE/link.pcap" 2>/dev/null | wc -l)
cleartext=$(tcpdump -r "$STATE/link.pcap" -A 2>/dev/null | grep -c "$marker" || true)
echo "   the link between the nodes carried $packets TCP packets; the value written, in clear: $cleartext times"
echo
echo "   node-1's certificates (one per identity of a local pod, and the node proxy's own):"
"${CTL[@]}" certs | sed 's/^/   /'
echo
echo "   the flows as node-1 saw them: PATH mtls, with the peer's SPIFFE ID as its certificate proved it"
"${CTL[@]}" flows --to demo/remote | head -6
echo
echo "   and node-2, where its proxy checked the client's certificate and SMI policy before connecting:"
"${CTL2[@]}" flows --to demo/remote | head -6
echo "Done in $(( $(date +%s) - start )) s."
if [ "$MODE" = keep ]; then
  echo
  echo "The demo keeps running. Try:"
  echo "  ${CTL[*]} maps dump sockhash"
  echo "  ${CTL[*]} top"
  echo "  ${CTL2[*]} flows      # node-2"
  echo "  ip netns exec shunt-demo-node curl -s http://127.0.0.1:9464/apis/metrics.smi-spec.io/v1alpha1/namespaces/demo/pods"
  echo "  $0 --down      # remove it"
fi
