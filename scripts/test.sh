#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the whole test suite.
# This is exactly what CI runs (.ci/run).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
jobs=$(nproc)

run_suite() {  # <build dir> <cmake args...>
  local build=$1; shift
  echo "== configure + build: $build $*"
  cmake -S "$root" -B "$build" "$@" >/dev/null
  cmake --build "$build" -j"$jobs" 2>&1 | grep -E "error|warning:" || true
  cmake --build "$build" -j"$jobs" >/dev/null  # fail loudly if the build failed
  echo "== test: $build"
  ctest --test-dir "$build" -j"$jobs" --output-on-failure --timeout 300
}

run_suite "$root/build/ci" -DCMAKE_BUILD_TYPE=RelWithDebInfo
