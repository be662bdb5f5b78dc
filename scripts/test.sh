#!/usr/bin/env bash
# Installs what is missing, builds everything, and runs the whole test suite:
# the release build, then the same suite under ASan+UBSan and under TSan.
# This is exactly what CI runs (.ci/run).
#
#   scripts/test.sh            release, ASan+UBSan, TSan (what CI runs)
#   scripts/test.sh release    the release suite only (the quick local loop)
#   scripts/test.sh asan|tsan  one sanitizer suite only
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
jobs=$(nproc)
mode=${1:-all}
case $mode in all | release | asan | tsan) ;; *)
  echo "usage: $0 [all|release|asan|tsan]" >&2
  exit 2
  ;;
esac
status=0
summary=()
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

run_suite() {  # <name> <build dir> <ctest args> -- <cmake args...>
  local name=$1 build=$2 ctest_args=$3; shift 4
  local t0=$SECONDS
  echo "== $name: configure + build ($build)"
  # A build directory made by another generator cannot be reused.
  if [[ -f $build/CMakeCache.txt ]] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${generator[1]:-Unix Makefiles}\$" "$build/CMakeCache.txt"; then
    rm -rf "$build"
  fi
  cmake -S "$root" -B "$build" "${generator[@]}" -DTASKFARM_PCH=ON "$@" >/dev/null
  if ! cmake --build "$build" -j"$jobs" >"$build.log" 2>&1; then
    grep -E "error|Error" "$build.log" | head -40
    echo "== $name: BUILD FAILED (full log: $build.log)"
    status=1
    summary+=("$name: build failed")
    return
  fi
  echo "== $name: built in $((SECONDS - t0)) s; test"
  # shellcheck disable=SC2086
  if ctest --test-dir "$build" -j"$jobs" --output-on-failure --timeout 300 $ctest_args; then
    summary+=("$name: passed ($((SECONDS - t0)) s)")
  else
    status=1
    summary+=("$name: FAILED ($((SECONDS - t0)) s)")
  fi
}

if [[ $mode == all || $mode == release ]]; then
  run_suite release "$root/build/ci" "" -- -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi

# Sanitizer runs: every test but the install check (a plain consumer cannot link
# sanitized libraries); no benchmarks. -O1 -g1: what the sanitizers recommend,
# and a build half as long as -O2 -g on two cores. Unity builds (each target's
# files compiled as one) take another 30% off; the release build compiles file
# by file, so a name that one file's helpers would take from another's in a
# unity build cannot hide there (test files keep their helpers' names distinct).
sanitizer_flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
  -DTASKFARM_BUILD_BENCHMARKS=OFF -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16)
# Tests kill workers with SIGSEGV, SIGBUS and SIGABRT on purpose and check that
# the pool names the signal: the sanitizers must not turn those into reports.
crash_signals=handle_segv=0:handle_sigbus=0:handle_abort=0
if [[ $mode == all || $mode == asan ]]; then
  export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:$crash_signals
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_suite asan+ubsan "$root/build/asan" "-LE install" -- "${sanitizer_flags[@]}" -DTASKFARM_SANITIZE=address
fi
if [[ $mode == all || $mode == tsan ]]; then
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:$crash_signals:suppressions=$root/tests/tsan.supp
  run_suite tsan "$root/build/tsan" "-LE install" -- "${sanitizer_flags[@]}" -DTASKFARM_SANITIZE=thread
fi

echo
echo "== summary"
printf '   %s\n' "${summary[@]}"
exit $status
