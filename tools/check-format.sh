#!/usr/bin/env bash
# Fails when C++ sources are not formatted as .clang-format says (clang-format 14).
#   tools/check-format.sh            every C++ file under agent/, proxy/, tools/ and test/
#   tools/check-format.sh BASE       only those a change since git revision BASE touches
# bpf/ and include/shunt/abi/ are BPF C in the kernel's style and not checked.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format is not installed" >&2; exit 2; }
paths=('agent/*.cc' 'agent/*.h' 'proxy/*.cc' 'proxy/*.h' 'tools/*.cc' 'tools/*.h' 'test/*.cc' 'test/*.h')
if [ $# -ge 1 ]; then
  mapfile -t files < <(git diff --name-only --diff-filter=ACMR "$1" -- "${paths[@]}")
else
  mapfile -t files < <(git ls-files -- "${paths[@]}")
fi
bad=()
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "check-format: not formatted (run: clang-format -i FILE):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
