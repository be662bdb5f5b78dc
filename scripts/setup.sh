#!/usr/bin/env bash
# Installs the Debian packages taskfarm needs, only those missing. Idempotent;
# quiet when there is nothing to do. Needs root (or sudo) only to install.
set -euo pipefail

packages=(
  g++ cmake make ninja-build     # toolchain
  libboost-dev                   # Boost.Interprocess (header-only)
  libcereal-dev                  # serialization
  nlohmann-json3-dev             # job files, results
  libcli11-dev                   # command line
  libgtest-dev libgmock-dev      # tests
  libbenchmark-dev               # micro-benchmarks
  python3                        # Python baselines in the benchmarks
)

missing=()
for p in "${packages[@]}"; do
  [[ $p == \#* ]] && continue
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "setup: missing packages: ${missing[*]}; run this script as root to install them" >&2
  exit 1
fi

echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Refresh the package lists only when an install fails for want of them.
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/taskfarm-setup.log 2>&1; then
  "${sudo[@]}" apt-get update -qq >>/tmp/taskfarm-setup.log 2>&1
  if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >>/tmp/taskfarm-setup.log 2>&1; then
    echo "setup: apt-get failed; see /tmp/taskfarm-setup.log" >&2
    tail -20 /tmp/taskfarm-setup.log >&2
    exit 1
  fi
fi
