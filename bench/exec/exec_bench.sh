#!/usr/bin/env bash
# Exec benchmark: N runs of `true` on 2 parallel slots, by taskfarm (the exec
# task, through a job file, and `taskfarm exec -j2 true ::: $(seq N)`), GNU
# parallel -j2 and xargs -P2, in the same run,
# as jobs per second and ratios. Each tool runs R times; the best run counts.
#
#   bench/exec/exec_bench.sh [TASKFARM_BINARY] [N=2000] [R=3] [SLOTS=2]
#
# This is a benchmark, not a test: it asserts nothing and exits 0 unless a
# tool fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
taskfarm=${1:-}
if [[ -z $taskfarm ]]; then
  for candidate in "$root"/build*/cli/taskfarm "$root"/build/*/cli/taskfarm; do
    [[ -x $candidate ]] && { taskfarm=$candidate; break; }
  done
fi
[[ -x ${taskfarm:-} ]] || { echo "usage: $0 TASKFARM_BINARY [N] [R] [SLOTS]" >&2; exit 2; }
n=${2:-2000}
repeats=${3:-3}
slots=${4:-2}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/job.json" <<JOB
{"pool": {"workers": $slots},
 "jobs": [{"name": "true", "task": "exec", "inputs": {"range": {"stop": $n}}, "args": ["true"]}],
 "output": {"results": "results.jsonl"}}
JOB

now() { date +%s.%N; }
# best_rate NAME COMMAND...: runs the command R times, prints the best jobs/s
best_rate() {
  local name=$1; shift
  local best=0 t0 t1 rate
  for ((r = 0; r < repeats; r++)); do
    t0=$(now)
    "$@" >/dev/null 2>"$work/stderr" || { echo "$name failed:" >&2; cat "$work/stderr" >&2; exit 1; }
    t1=$(now)
    rate=$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
    best=$(awk -v a="$best" -v b="$rate" 'BEGIN { print (b > a) ? b : a }')
  done
  echo "$best"
}

run_taskfarm() { "$taskfarm" run "$work/job.json" --progress never; }
run_taskfarm_exec() { "$taskfarm" exec -j"$slots" true ::: $(seq "$n"); }
run_xargs() { seq "$n" | xargs -P"$slots" -n1 true; }
run_parallel() { seq "$n" | parallel --will-cite -j"$slots" true; }

tf=$(best_rate taskfarm run_taskfarm)
lines=$(wc -l <"$work/results.jsonl")
[[ $lines -eq $n ]] || { echo "taskfarm wrote $lines result lines, expected $n" >&2; exit 1; }
te=$(best_rate "taskfarm exec" run_taskfarm_exec)
xa=$(best_rate xargs run_xargs)
if command -v parallel >/dev/null; then
  gp=$(best_rate parallel run_parallel)
else
  gp=""
fi

echo "exec benchmark: $n x \`true\`, $slots slots, best of $repeats ($(nproc) CPUs, $(uname -sr))"
printf '  %-28s %10s jobs/s\n' "taskfarm (exec task)" "$tf"
printf '  %-28s %10s jobs/s\n' "taskfarm exec -j$slots" "$te"
printf '  %-28s %10s jobs/s\n' "xargs -P$slots" "$xa"
[[ -n $gp ]] && printf '  %-28s %10s jobs/s\n' "GNU parallel -j$slots" "$gp"
awk -v t="$tf" -v x="$xa" 'BEGIN { printf "  taskfarm run / xargs      = %.2fx\n", t / x }'
awk -v t="$te" -v x="$xa" 'BEGIN { printf "  taskfarm exec / xargs     = %.2fx\n", t / x }'
[[ -n $gp ]] && awk -v t="$tf" -v g="$gp" 'BEGIN { printf "  taskfarm run / parallel   = %.2fx\n", t / g }'
[[ -n $gp ]] && awk -v t="$te" -v g="$gp" 'BEGIN { printf "  taskfarm exec / parallel  = %.2fx\n", t / g }'
exit 0
