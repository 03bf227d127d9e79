#!/usr/bin/env bash
# The e2e suite's scenarios against the kind cluster (steps 10-40 first), as
# a user would check them: real requests from pods with kubectl exec + curl
# or nc, and the pods' own interface counters; the agent's shuntctl only as
# a second witness, never alone.
#
#   same-node      pod-to-pod on one node works and is short-circuited
#   split          the bookstore TrafficSplit divides requests roughly 90/10
#   recreated      a pod deleted and created again is meshed again
#   restart        a connection open across an agent restart keeps working
#   enforce        enforce mode: a pod without a TrafficTarget is refused
#                  (EPERM on the same node; from the other, reset by the
#                  receiving proxy with mTLS, dropped without), an allowed
#                  one is served
#   mtls           (shunt-config mtls not off) a cross-node request goes
#                  through the two proxies: the client pod's eth0 carries
#                  nothing (handed to its node's proxy socket to socket),
#                  the node's link carries the bytes, and shuntctl names
#                  the verified peer identity
#
# Prints PASS/FAIL per scenario and a summary; the exit status is the number
# of failures. Run as root in the VM: /shunt/vagrant/scenarios.sh [NAME...]
set -uo pipefail
# shellcheck source=vagrant/lib.sh
. "$(dirname "$0")/lib.sh"
NS=shunt-scenarios
BULK_BYTES=50000000

# --- helpers -------------------------------------------------------------------
x() { k -n "$NS" exec "$1" -c "${2:-c}" -- "${@:3}"; }  # x POD CONTAINER CMD...
why() { echo "    $*"; }
pod_ip() { k -n "$NS" get pod "$1" -o jsonpath='{.status.podIP}'; }
agent_on() {
  k -n shunt-system get pods -l app.kubernetes.io/name=shunt-agent \
    --field-selector "spec.nodeName=$1" -o jsonpath='{.items[0].metadata.name}'
}
ctl() { # ctl NODE shuntctl-args...: shuntctl in that node's agent
  local node=$1
  shift
  k -n shunt-system exec "$(agent_on "$node")" -c agent -- shuntctl "$@"
}
agents_ready() {
  k -n shunt-system rollout status daemonset/shunt-agent --timeout "${1:-180s}" >/dev/null
}
tx_bytes() { x "$1" c cat /sys/class/net/eth0/statistics/tx_bytes; }
# A kind node is a container of the same name on this VM: its eth0 is the
# node's link to the other node.
node_tx_bytes() { docker exec "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }

# bulk CLIENT IP: sends BULK_BYTES to IP:9000 (server-a's sink) and prints
# how many bytes the client pod's eth0 transmitted meanwhile.
bulk() {
  local before after
  before=$(tx_bytes "$1") || return 1
  x "$1" c sh -c "head -c $BULK_BYTES /dev/zero | timeout 60 nc -w 3 $2 9000" >/dev/null 2>&1
  after=$(tx_bytes "$1") || return 1
  echo $((after - before))
}

set_mode() {
  k -n shunt-system patch configmap shunt-config --type merge -p "{\"data\":{\"mode\":\"$1\"}}" >/dev/null &&
    k -n shunt-system rollout restart daemonset/shunt-agent >/dev/null &&
    agents_ready 240s
}

# Same node, both ways of looking: the request is answered; bulk bytes do not
# cross the client's veth (the sk_msg redirect moves them socket to socket)
# while the same transfer from the other node does; shuntctl lists the pair
# as short-circuited.
check_short_circuit() {
  local server_ip out delta control flows ok=0
  server_ip=$(pod_ip server-a)
  out=$(x client-a c curl -sS -m 5 "http://$server_ip:8080/hostname" 2>&1)
  [ "$out" = server-a ] || { why "client-a -> server-a:8080 answered '$out', expected 'server-a'"; ok=1; }
  delta=$(bulk client-a "$server_ip") || { why "bulk transfer from client-a failed"; return 1; }
  # The control: the same transfer from the other node must show up on a
  # link. Without mTLS on client-b's eth0; with it on node B's link only
  # (client-b's connection is handed to its node's proxy socket to socket).
  local node_before node_after
  node_before=$(node_tx_bytes "$NODE_B") || { why "cannot read $NODE_B's link counters"; return 1; }
  control=$(bulk client-b "$server_ip") || { why "bulk transfer from client-b failed"; return 1; }
  node_after=$(node_tx_bytes "$NODE_B") || return 1
  why "$BULK_BYTES bytes sent: client-a's eth0 carried $delta bytes (same node), client-b's $control and $NODE_B's link $((node_after - node_before)) (other node)"
  [ "$delta" -lt 2000000 ] || { why "same-node bytes crossed the veth: not short-circuited"; ok=1; }
  [ $((node_after - node_before)) -gt $((BULK_BYTES * 8 / 10)) ] || { why "the cross-node control did not carry the bytes: counters cannot be trusted"; ok=1; }
  flows=$(ctl "$NODE_A" flows --from "$NS/client-a" --to "$NS/server-a" --path short-circuit -o json 2>&1 | grep -c '"path":"short-circuit"')
  why "shuntctl on $NODE_A: $flows short-circuited flow(s) client-a -> server-a"
  [ "${flows:-0}" -ge 1 ] || ok=1
  return $ok
}

# --- scenarios ---------------------------------------------------------------------
scenario_same-node() { check_short_circuit; }

scenario_split() {
  local ip out v1 v2 total
  ip=$(k -n bookstore get service bookstore -o jsonpath='{.spec.clusterIP}')
  out=$(k -n bookbuyer exec deploy/bookbuyer -- sh -c \
    "for i in \$(seq 300); do curl -s -m 2 http://$ip:8080/hostname; echo; done" 2>&1)
  v1=$(grep -c '^bookstore-v1-' <<<"$out")
  v2=$(grep -c '^bookstore-v2-' <<<"$out")
  total=$((v1 + v2))
  why "300 requests to the root Service $ip:8080: $v1 from v1, $v2 from v2, $((300 - total)) failed (split 90/10)"
  # 10% of 300 is 30; 12..60 is far outside chance (binomial sd about 5).
  [ "$total" -ge 290 ] && [ "$v2" -ge 12 ] && [ "$v2" -le 60 ]
}

scenario_recreated() {
  local old new
  old=$(pod_ip server-a)
  k -n "$NS" delete pod server-a --wait=true >/dev/null || return 1
  sed -e "s/NODE_A/$NODE_A/; s/NODE_B/$NODE_B/" "$SRC/vagrant/scenarios/pods.yaml" | k apply -f - >/dev/null
  k -n "$NS" wait --for=condition=Ready pod/server-a --timeout 180s >/dev/null || { why "server-a did not come back"; return 1; }
  new=$(pod_ip server-a)
  why "server-a recreated: $old -> $new"
  check_short_circuit
}

scenario_restart() {
  local ip agent out codes n first rest
  ip=$(pod_ip server-a)
  agent=$(agent_on "$NODE_A")
  # 20 requests on ONE keep-alive connection, 10 a minute: about two minutes,
  # across the agent's restart. -w prints the status and whether curl had to
  # connect for that request (1) or reused the connection (0).
  local urls=()
  for _ in $(seq 20); do urls+=("http://$ip:8080/hostname"); done
  x client-a c curl -s --rate 10/m -w '\n%{http_code} %{num_connects}\n' "${urls[@]}" >/tmp/shunt-restart.out 2>&1 &
  local bg=$!
  sleep 20
  why "deleting agent pod $agent on $NODE_A while the connection is open"
  k -n shunt-system delete pod "$agent" --wait=false >/dev/null
  sleep 5
  agents_ready 240s || why "the agent did not become ready again"
  wait "$bg"
  out=$(cat /tmp/shunt-restart.out)
  codes=$(grep -E '^[0-9]{3} [0-9]+$' <<<"$out")
  n=$(grep -c . <<<"$codes")
  first=$(head -1 <<<"$codes")
  rest=$(tail -n +2 <<<"$codes" | sort | uniq -c | tr -s ' ' | tr '\n' ';')
  why "requests answered: $n of 20; first '$first', then (count status connects):$rest"
  [ "$n" = 20 ] && [ "$first" = "200 1" ] && [ "$(tail -n +2 <<<"$codes" | grep -vc '^200 0$')" = 0 ]
}

scenario_enforce() {
  local ip store out rc ok=0
  set_mode enforce || { why "the agents did not come back in enforce mode"; return 1; }
  ip=$(pod_ip server-a)
  out=$(x client-a c curl -sS -m 5 "http://$ip:8080/hostname" 2>&1)
  if [ "$out" = server-a ]; then
    why "client-a (granted) -> server-a: served"
  else
    why "client-a (granted) -> server-a: '$out'"
    ok=1
  fi
  rc=0
  out=$(x stranger-a c curl -sv -m 5 "http://$ip:8080/hostname" 2>&1) || rc=$?
  if [ "$rc" = 7 ] && grep -qi 'not permitted' <<<"$out"; then
    why "stranger-a (same node) -> server-a: refused at connect() with EPERM"
  else
    why "stranger-a (same node) -> server-a: curl exit $rc, expected 7 with 'Operation not permitted'"
    ok=1
  fi
  rc=0
  x stranger-b c curl -sS -m 5 "http://$ip:8080/hostname" >/dev/null 2>&1 || rc=$?
  # Without mTLS the SYN is dropped at server-a's veth (timeout, 28); with it
  # the receiving proxy refuses the stranger's proven identity and resets
  # the connection (56, or 52 for an empty reply).
  if [ "$MTLS" = off ] && [ "$rc" = 28 ]; then
    why "stranger-b (other node) -> server-a: SYN dropped, timed out"
  elif [ "$MTLS" != off ] && { [ "$rc" = 56 ] || [ "$rc" = 52 ]; }; then
    why "stranger-b (other node) -> server-a: reset by $NODE_A's proxy (curl exit $rc)"
  else
    why "stranger-b (other node) -> server-a: curl exit $rc, expected $([ "$MTLS" = off ] && echo 28 || echo '56 or 52')"
    ok=1
  fi
  store=$(k -n bookstore get service bookstore -o jsonpath='{.spec.clusterIP}')
  rc=0
  k -n bookthief exec deploy/bookthief -- curl -sS -m 5 "http://$store:8080/hostname" >/dev/null 2>&1 || rc=$?
  # EPERM (7) when the chosen bookstore pod is on bookthief's node; when it
  # is on the other, a timeout (28) or, with mTLS, a reset (56, 52).
  if [ "$rc" = 7 ] || [ "$rc" = 28 ] || [ "$rc" = 56 ] || [ "$rc" = 52 ]; then
    why "bookthief -> bookstore: refused (curl exit $rc)"
  else
    why "bookthief -> bookstore: curl exit $rc, expected a refusal"
    ok=1
  fi
  out=$(k -n bookbuyer exec deploy/bookbuyer -- curl -sS -m 5 "http://$store:8080/hostname" 2>&1)
  if grep -q '^bookstore-v' <<<"$out"; then
    why "bookbuyer -> bookstore: served by $out"
  else
    why "bookbuyer -> bookstore: '$out'"
    ok=1
  fi
  return $ok
}

scenario_mtls() {
  local ip out before after node_before node_after flows certs ok=0
  [ "$MTLS" != off ] || { why "shunt-config mtls is off"; return 1; }
  ip=$(pod_ip server-a)
  out=$(x client-b c curl -sS -m 5 "http://$ip:8080/hostname" 2>&1)
  [ "$out" = server-a ] || { why "client-b -> server-a:8080 answered '$out', expected 'server-a'"; ok=1; }
  before=$(tx_bytes client-b) || return 1
  node_before=$(node_tx_bytes "$NODE_B") || return 1
  x client-b c sh -c "head -c $BULK_BYTES /dev/zero | timeout 60 nc -w 3 $ip 9000" >/dev/null 2>&1
  after=$(tx_bytes client-b) || return 1
  node_after=$(node_tx_bytes "$NODE_B") || return 1
  why "$BULK_BYTES bytes client-b -> server-a: client-b's eth0 carried $((after - before)), $NODE_B's link $((node_after - node_before))"
  [ $((after - before)) -lt 2000000 ] || { why "the bytes left client-b on its veth: not handed to the proxy"; ok=1; }
  [ $((node_after - node_before)) -gt "$BULK_BYTES" ] || { why "$NODE_B's link did not carry the (encrypted) bytes"; ok=1; }
  flows=$(ctl "$NODE_B" flows --from "$NS/client-b" --to "$NS/server-a" --path mtls -o json 2>&1 |
    grep -c "spiffe://[a-z0-9.-]*/ns/$NS/sa/server")
  why "shuntctl on $NODE_B: $flows mtls flow(s) client-b -> server-a naming the server's SPIFFE ID"
  [ "${flows:-0}" -ge 1 ] || ok=1
  certs=$(ctl "$NODE_A" certs 2>&1 | grep -c "/ns/$NS/sa/server")
  why "shuntctl certs on $NODE_A: $certs certificate(s) for $NS/server"
  [ "${certs:-0}" -ge 1 ] || ok=1
  return $ok
}

# --- main ------------------------------------------------------------------------------
ALL=(same-node split recreated restart enforce mtls)
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=("${ALL[@]}")
declare -A RESULT
FAILS=0

finish() {
  echo
  echo "== summary"
  for s in "${WANT[@]}"; do printf '  %-10s %s\n' "$s" "${RESULT[$s]:-FAIL (not run)}"; done
  echo "  $(( ${#WANT[@]} - FAILS )) passed, $FAILS failed"
  exit "$FAILS"
}

NODE_A=$(k get nodes -o jsonpath='{.items[0].metadata.name}')
NODE_B=$(k get nodes -o jsonpath='{.items[1].metadata.name}')
if [ -z "$NODE_A" ] || [ -z "$NODE_B" ]; then
  echo "need a cluster of two nodes ($KCTX); run steps/20-cluster.sh" >&2
  FAILS=${#WANT[@]}
  finish
fi
say "preflight: agents on $NODE_A and $NODE_B"
if ! agents_ready 60s; then
  echo "The agent DaemonSet is not ready, so no scenario can pass. Its log:" >&2
  k -n shunt-system logs daemonset/shunt-agent -c agent --tail 20 >&2 || true
  FAILS=${#WANT[@]}
  finish
fi
MODE=$(k -n shunt-system get configmap shunt-config -o jsonpath='{.data.mode}')
MODE=${MODE:-permissive}
MTLS=$(k -n shunt-system get configmap shunt-config -o jsonpath='{.data.mtls}')
MTLS=${MTLS:-off}
trap '[ "$MODE" = enforce ] || set_mode "$MODE" >/dev/null 2>&1; finish' EXIT
[ "$MODE" = permissive ] || set_mode permissive || echo "could not switch to permissive mode" >&2
sed -e "s/NODE_A/$NODE_A/; s/NODE_B/$NODE_B/" "$SRC/vagrant/scenarios/pods.yaml" | k apply -f - >/dev/null
k -n "$NS" wait --for=condition=Ready pod --all --timeout 180s >/dev/null || echo "test pods not ready" >&2

for s in "${WANT[@]}"; do
  say "scenario $s"
  if ! declare -F "scenario_$s" >/dev/null; then
    echo "    no such scenario (have: ${ALL[*]})"
    RESULT[$s]=FAIL
    FAILS=$((FAILS + 1))
  elif "scenario_$s"; then
    RESULT[$s]=PASS
    echo "PASS $s"
  else
    RESULT[$s]=FAIL
    FAILS=$((FAILS + 1))
    echo "FAIL $s"
  fi
done
