#!/usr/bin/env bash
# Installs what cluster needs from Debian 12's archive: the build (default) or, with
# --test, everything the test suite uses too (clang, sanitizer and libFuzzer runtimes).
set -euo pipefail

packages=(g++ cmake make pkg-config liburing-dev libboost1.81-dev)
if [[ "${1:-}" == "--test" ]]; then
    packages+=(catch2 clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
