#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   0. checks that the C++ sources are formatted (tools/check-format.sh);
#   1. installs packages, builds everything with warnings as errors;
#   2. runs every CTest test: unit tests, and the privileged end-to-end tests
#      (network namespaces, cgroups, BPF; they skip loudly only without root);
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and
#      runs the suite once more (but the kernel-only suites: KERNEL_ONLY), so
#      the agent and the proxy themselves run under the sanitizers;
#   4. builds the fuzz targets with clang and runs each for FUZZ_SECONDS
#      (default 15; 0 skips) on its seed corpus (tools/fuzz.sh, docs/fuzzing.md).
# To keep CI within 40 minutes on 2 cores, each next build runs at the lowest
# CPU priority (nice 19) while the tests before it run: the sanitizer build
# during the first suite, the fuzz build during the second. The tests, mostly
# waiting on sockets and namespaces, keep the CPU whenever they want it.
# Usage, as root (it never calls sudo): tools/test.sh [--no-sanitize] [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
SANITIZE=1
if [ "${1:-}" = "--no-sanitize" ]; then SANITIZE=0; shift; fi
JOBS=$(nproc)

bash tools/install-deps.sh
if [ "$(id -u)" = 0 ]; then
  mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
else
  echo "WARNING: not root: the end-to-end tests will SKIP; run as root for the full suite" >&2
fi

# build/ and build-asan/ are this script's own; the quickstart builds into
# build-quickstart/. SHUNT_BUILD_TESTS=ON is explicit so that a cache written
# with it OFF (a quickstart of an earlier version used build/) cannot leave a
# tree without tests, and --no-tests=error fails the run if it ever does.
configure() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON -DSHUNT_BUILD_TESTS=ON "$@" >/dev/null
}
run_tests() {
  local dir=$1; shift
  ctest --test-dir "$dir" --no-tests=error --output-on-failure --timeout 600 "$@" "${CTEST_ARGS[@]}"
}
# A build in the background at nice 19, its output in the file $1; its pid
# in BG_PID, which leads its own process group (the compilers with it).
BG_PIDS=()
background() {
  local log=$1; shift
  mkdir -p "$(dirname "$log")"
  setsid nice -n 19 "$@" >"$log" 2>&1 &
  BG_PID=$!
  BG_PIDS+=("$BG_PID")
}
# Waits for the background build; on failure shows its log and fails.
await() {
  local pid=$1 log=$2 what=$3
  if ! wait "$pid"; then
    echo "== $what failed:" >&2
    tail -n 200 "$log" >&2
    exit 1
  fi
  echo "== $what: done (in the background)"
}
# A failing step leaves no build running behind it.
stop_background() {
  local pid
  for pid in "${BG_PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
}
trap stop_background EXIT
CTEST_ARGS=("$@")
# Suites that test what the kernel does with sockets and packets (socket
# features on the short-circuit, payload sizes, the attack suite's raw
# packets): the agent they start is the same as everyone's, and the
# sanitizers watch only user space, so the ASan pass leaves them to the
# first pass (about 3 of its minutes under the sanitizers).
KERNEL_ONLY='^(Cases/CompatTest|Sizes/PayloadTest|CompatLimitsTest|SpoofTest|AttackTest|FragmentAttackTest|Ipv6AttackTest|NatAttackTest|ProtocolAttackTest|RawAttackTest|UnknownPodTest)[./]'

FUZZ_SECONDS=${FUZZ_SECONDS:-15}

echo "== format (clang-format, every C++ file under agent/ tools/ test/)"
bash tools/check-format.sh

echo "== build and test (RelWithDebInfo)"
configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$JOBS"
if [ "$SANITIZE" = 1 ]; then
  # No benchmarks there: no test runs them (CI time).
  configure build-asan -DCMAKE_BUILD_TYPE=Debug -DSHUNT_SANITIZE=ON -DSHUNT_BUILD_BENCH=OFF
  echo "== building the ASan + UBSan tree meanwhile (nice 19, build-asan/background.log)"
  background build-asan/background.log cmake --build build-asan -j"$JOBS"
  asan_pid=$BG_PID
fi
run_tests build
if [ "$SANITIZE" = 1 ]; then
  await "$asan_pid" build-asan/background.log "the ASan + UBSan build"
  if [ "$FUZZ_SECONDS" != 0 ]; then
    echo "== building the fuzz targets meanwhile (nice 19, build-fuzz/background.log)"
    background build-fuzz/background.log bash tools/fuzz.sh 0
    fuzz_pid=$BG_PID
  fi
  echo "== test under ASan + UBSan (without the kernel-only suites, see KERNEL_ONLY)"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_tests build-asan -E "$KERNEL_ONLY"
  if [ -n "${fuzz_pid:-}" ]; then await "$fuzz_pid" build-fuzz/background.log "the fuzz build"; fi
fi
if [ "$FUZZ_SECONDS" != 0 ]; then
  echo "== fuzz: every target ${FUZZ_SECONDS} s on its seed corpus (tools/fuzz.sh)"
  bash tools/fuzz.sh "$FUZZ_SECONDS"
fi
echo "== all tests passed"
