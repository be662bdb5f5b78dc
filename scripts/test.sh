#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the whole test suite.
# This is exactly what CI runs (.ci/run).
#
#   scripts/test.sh            the suite, built for release (what CI runs)
#   scripts/test.sh sanitize   the same, then again under ASan+UBSan and under TSan
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
jobs=$(nproc)
mode=${1:-release}
status=0
summary=()

run_suite() {  # <name> <build dir> <ctest args> -- <cmake args...>
  local name=$1 build=$2 ctest_args=$3; shift 4
  local t0=$SECONDS
  echo "== $name: configure + build ($build)"
  cmake -S "$root" -B "$build" "$@" >/dev/null
  if ! cmake --build "$build" -j"$jobs" >"$build.log" 2>&1; then
    grep -E "error|Error" "$build.log" | head -40
    echo "== $name: BUILD FAILED (full log: $build.log)"
    status=1
    summary+=("$name: build failed")
    return
  fi
  echo "== $name: test"
  # shellcheck disable=SC2086
  if ctest --test-dir "$build" -j"$jobs" --output-on-failure --timeout 300 $ctest_args; then
    summary+=("$name: passed ($((SECONDS - t0)) s)")
  else
    status=1
    summary+=("$name: FAILED ($((SECONDS - t0)) s)")
  fi
}

run_suite release "$root/build/ci" "" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo

if [[ $mode == sanitize ]]; then
  # Sanitizer runs: every test but the install check (a plain consumer cannot
  # link sanitized libraries). Benchmarks are not built.
  export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite asan+ubsan "$root/build/asan" "-LE install" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTASKFARM_SANITIZE=address -DTASKFARM_BUILD_BENCHMARKS=OFF
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  run_suite tsan "$root/build/tsan" "-LE install" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTASKFARM_SANITIZE=thread -DTASKFARM_BUILD_BENCHMARKS=OFF
fi

echo
echo "== summary"
printf '   %s\n' "${summary[@]}"
exit $status
