#!/usr/bin/env bash
# Installs what is missing, builds taskfarm, and runs the demo batch job.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
build="$root/build/release"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTASKFARM_BUILD_TESTS=OFF \
      -DTASKFARM_BUILD_BENCHMARKS=OFF -DTASKFARM_BUILD_EXAMPLES=OFF -DTASKFARM_PCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target taskfarm_exe >/dev/null
exec "$build/cli/taskfarm" run "$root/configs/demo.json" "$@"
