#!/usr/bin/env bash
# Formats every C++ file git knows of with .clang-format; --check changes nothing and
# fails, listing them, if any file is not formatted. clang-format-16 comes with
# scripts/install-deps.sh --test.
set -euo pipefail
cd "$(dirname "$0")/.."
formatter=clang-format-16
command -v "$formatter" >/dev/null || { echo "format.sh: $formatter not found (scripts/install-deps.sh --test installs it)" >&2; exit 2; }
mapfile -t listed < <(git ls-files --cached --others --exclude-standard '*.hpp' '*.cpp' '*.h')
files=()
for f in "${listed[@]}"; do [[ -f $f ]] && files+=("$f"); done
case "${1:-}" in
    --check)
        unformatted=()
        for f in "${files[@]}"; do
            "$formatter" --style=file "$f" | cmp -s - "$f" || unformatted+=("$f")
        done
        if (( ${#unformatted[@]} )); then
            echo "format.sh: not formatted (run scripts/format.sh):" >&2
            printf '  %s\n' "${unformatted[@]}" >&2
            exit 1
        fi ;;
    "") "$formatter" --style=file -i "${files[@]}" ;;
    *) echo "format.sh: unknown option '$1' (--check)" >&2; exit 2 ;;
esac
