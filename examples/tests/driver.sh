# What the example tests share, sourced: the program under test ($program) started with its
# output readable line by line, and expect(), which reads up to a line and hands every line
# it passes to note_line (which the test defines, to keep track of its workers).
dir=$(mktemp -d)
primary=
trap '[[ -n $primary ]] && kill -KILL "$primary" 2>/dev/null; rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# Starts $program with these arguments, its output readable on fd 3.
start() {
    rm -f "$dir/out"
    mkfifo "$dir/out"
    "$program" "$@" >"$dir/out" 2>&1 &
    primary=$!
    exec 3<"$dir/out"
}

# Echoes the program's output up to the first line matching $1 (an ERE); BASH_REMATCH
# then holds that line's match.
expect() {
    local line
    while IFS= read -r -t 20 -u 3 line; do
        echo "$line"
        note_line "$line"
        [[ $line =~ $1 ]] && return 0
    done
    fail "no line matching '$1'"
}
