#!/usr/bin/env bash
# Fuzzes every parser of untrusted input (docs/fuzzing.md): configures and
# builds the libFuzzer targets of test/fuzz in build-fuzz/ with clang
# (ASan + UBSan + libFuzzer's coverage, through ccache when it is
# installed), then runs each target in turn for SECONDS on a copy of its
# seed corpus. Fails if any target finds anything: a crash, a sanitizer
# report, a leak, a slow input (over 10 s), an input that takes over
# 2 GiB, or a failed FUZZ_CHECK. What a target found stays in
# build-fuzz/fuzz-out/<target>/artifacts/ (replay one with
# build-fuzz/test/fuzz/fuzz_<target> FILE).
#
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   SECONDS_PER_TARGET  default 20; CI (tools/test.sh) runs 15, the long run 1800;
#                       0 only builds the targets
#   TARGET              default: all (the folders of test/fuzz/corpus)
# Environment: FUZZ_BUILD_DIR (build-fuzz), FUZZ_JOBS (the build's -j, nproc),
# FUZZ_NICE (a nice level for the build and the runs, none by default).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(ls test/fuzz/corpus)
fi
dir=${FUZZ_BUILD_DIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
nice=()
[ -n "${FUZZ_NICE:-}" ] && nice=(nice -n "$FUZZ_NICE")

command -v clang++ >/dev/null || { echo "fuzz: clang++ is not installed (tools/install-deps.sh)" >&2; exit 2; }
launcher=()
if command -v ccache >/dev/null; then
  # Relative paths in the cache keys: a build in another checkout hits too.
  export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD}
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
CC=clang CXX=clang++ "${nice[@]}" cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSHUNT_FUZZ=ON -DSHUNT_BUILD_TESTS=ON "${launcher[@]}" >/dev/null
if ! grep -q '^CMAKE_CXX_COMPILER:FILEPATH=.*clang' "$dir/CMakeCache.txt"; then
  echo "fuzz: $dir was configured with another compiler; remove it and run again" >&2
  exit 2
fi
"${nice[@]}" cmake --build "$dir" -j"$jobs" --target fuzz_all
[ "$secs" = 0 ] && exit 0  # built; libFuzzer would take 0 s as "forever"

out=$dir/fuzz-out
failed=()
printf '%-14s %10s %8s %7s %7s %12s %8s  %s\n' target execs exec/s cov ft corpus rss_mb result
for t in "${targets[@]}"; do
  bin=$dir/test/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: no target $t" >&2; exit 2; }
  rm -rf "${out:?}/$t"
  mkdir -p "$out/$t/corpus" "$out/$t/artifacts"
  cp test/fuzz/corpus/"$t"/* "$out/$t/corpus/"
  result=ok
  # -timeout: an input that takes 10 s is a finding (unbounded work);
  # -rss_limit_mb: so is one that takes 2 GiB (unbounded memory).
  if ! "${nice[@]}" "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/$t/artifacts/" \
      "$out/$t/corpus" >"$out/$t/log" 2>&1; then
    result=FAILED
  fi
  if compgen -G "$out/$t/artifacts/*" >/dev/null; then result=FAILED; fi
  [ "$result" = ok ] || failed+=("$t")
  # The last status line: "#N DONE cov: C ft: F corp: U/Sb ...".
  status=$(grep -E '^#[0-9]+' "$out/$t/log" | tail -1 || true)
  stat() { grep -E "^stat::$1:" "$out/$t/log" | awk '{print $2}' | tail -1; }
  field() { sed -nE "s/.* $1: ([^ ]+).*/\\1/p" <<<"$status"; }
  printf '%-14s %10s %8s %7s %7s %12s %8s  %s\n' "$t" "$(stat number_of_executed_units)" \
    "$(stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "$(field corp)" \
    "$(stat peak_rss_mb)" "$result"
done
if ((${#failed[@]})); then
  for t in "${failed[@]}"; do
    echo "== fuzz_$t found something: $out/$t/log (last lines below), inputs in $out/$t/artifacts/" >&2
    tail -40 "$out/$t/log" >&2
  done
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs} s each, nothing found"
