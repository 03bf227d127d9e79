#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   0. checks that the C++ sources are formatted (tools/check-format.sh);
#   1. installs packages, builds everything with warnings as errors;
#   2. runs every CTest test: unit tests, and the privileged end-to-end tests
#      (network namespaces, cgroups, BPF; they skip loudly only without root);
#   3. builds again with AddressSanitizer + UndefinedBehaviorSanitizer and
#      runs the suite once more, so the agent itself runs under the sanitizers;
#   4. builds the fuzz targets with clang and runs each for FUZZ_SECONDS
#      (default 15; 0 skips) on its seed corpus (tools/fuzz.sh, docs/fuzzing.md).
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
build_and_test() {
  local dir=$1; shift
  cmake -S . -B "$dir" -DCMAKE_COMPILE_WARNING_AS_ERROR=ON -DSHUNT_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j"$JOBS"
  ctest --test-dir "$dir" --no-tests=error --output-on-failure --timeout 600 "${CTEST_ARGS[@]}"
}
CTEST_ARGS=("$@")

echo "== format (clang-format, every C++ file under agent/ tools/ test/)"
bash tools/check-format.sh

echo "== build and test (RelWithDebInfo)"
build_and_test build -DCMAKE_BUILD_TYPE=RelWithDebInfo
if [ "$SANITIZE" = 1 ]; then
  echo "== build and test under ASan + UBSan"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  # No benchmarks here: no test runs them (CI time).
  build_and_test build-asan -DCMAKE_BUILD_TYPE=Debug -DSHUNT_SANITIZE=ON -DSHUNT_BUILD_BENCH=OFF
fi
FUZZ_SECONDS=${FUZZ_SECONDS:-15}
if [ "$FUZZ_SECONDS" != 0 ]; then
  echo "== fuzz: every target ${FUZZ_SECONDS} s on its seed corpus (tools/fuzz.sh)"
  bash tools/fuzz.sh "$FUZZ_SECONDS"
fi
echo "== all tests passed"
