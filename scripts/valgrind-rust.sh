#!/usr/bin/env bash
# Runs the Rust harness (the integration tests that drive the C ABI over real
# fds) under valgrind's memcheck; any error fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t bins < <(cargo test --locked --no-run --message-format=json --test 'c_abi_*' \
    --test fd_helper 2>/dev/null \
    | /usr/bin/python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
[ ${#bins[@]} -gt 0 ] || { echo "valgrind-rust: no test binaries found" >&2; exit 1; }
export CMX_TEST_DEADLINE_SECS=${CMX_TEST_DEADLINE_SECS:-180}
# Only definite leaks are errors and only they are shown: std's thread-local state that the
# test runner leaves behind at exit is "possibly lost", which is not ours to fix.
for b in "${bins[@]}"; do
    out=$(mktemp)
    if ! valgrind --quiet --error-exitcode=1 --leak-check=full --show-leak-kinds=definite \
            --errors-for-leak-kinds=definite "$b" --test-threads=1 -q >"$out" 2>&1; then
        cat "$out"; rm -f "$out"
        echo "valgrind: $(basename "$b"): FAILED" >&2
        exit 1
    fi
    echo "valgrind: $(basename "$b"): $(awk '/^test result:/ { print $4 " passed, no error" }' "$out")"
    rm -f "$out"
done
