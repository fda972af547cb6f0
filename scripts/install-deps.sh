#!/usr/bin/env bash
# Installs what cluster needs from Debian 12's archive: the build (default); with --test,
# everything the test suite uses too (clang, sanitizer and libFuzzer runtimes, clang-format,
# nginx and curl for the test behind nginx, systemd's systemd-socket-activate and
# systemd-analyze, python3 for the tests' helpers, hiredis with a real redis-server for
# cluster::redis and the chat example, chromium for the chat page's test); with --test-build,
# only what building the tests with g++ needs of that (scripts/test.sh installs the rest while
# they build); with --demo, wrk as well, which scripts/http_demo.sh puts a load on
# http_server with.
set -euo pipefail

# node-llhttp: the C sources of Node's HTTP parser, which cluster::http builds; libwslay-dev:
# the WebSocket framing cluster::websocket uses (cmake/components.cmake).
packages=(g++ cmake make pkg-config liburing-dev libboost1.81-dev node-llhttp libwslay-dev)
# Of --test's, what configuring and building the tests with g++ needs: the generator
# scripts/test.sh builds with (ninja-build), Catch2, hiredis for cluster::redis, and python3,
# which the package tests are configured with.
test_build=(ninja-build catch2 libhiredis-dev python3)
for arg in "$@"; do
    case $arg in
        # python3-websockets: the WebSocket client tests/websocket/ws_echo_cases.py and
        # tests/chat/chat_cases.py drive; chromium: the headless browser that loads chat's page;
        # prometheus: its promtool, which checks the metrics pages the tests make; tmux: the
        # terminal clusterctl top is drawn in and read back from; dpkg-dev: dpkg-shlibdeps, which
        # cpack runs for the clusterctl package's Depends (tests/package/check_deb.cmake); lld:
        # the linker of scripts/test.sh's sanitizers' programs.
        --test-build) packages+=("${test_build[@]}") ;;
        --test) packages+=("${test_build[@]}" lld clang libclang-rt-14-dev clang-format-16 nginx-light curl systemd
                           python3-websockets redis-server chromium prometheus tmux dpkg-dev) ;;
        --demo) packages+=(wrk) ;;
        *) echo "install-deps.sh: unknown option '$arg' (--test, --test-build, --demo)" >&2; exit 2 ;;
    esac
done

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
