#!/usr/bin/env bash
# A separate, slower check (not part of scripts/test.sh): builds the patched QEMU
# with AddressSanitizer and UndefinedBehaviorSanitizer in its own cache and runs
# QEMU's test-char, the multiplex qtest and the end-to-end tests against it. Any sanitizer report fails.
#
#   ./scripts/qemu/sanitize.sh [pytest args...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
./scripts/install-deps.sh
export CMX_CACHE=${CMX_SANITIZE_CACHE:-$HOME/.cache/chardev-multiplex-sanitize}
qemu=$(CMX_QEMU_CONFIGURE_ARGS="--enable-asan --enable-ubsan" ./scripts/qemu/build.sh | tail -n 1)
qbuild=$(dirname "$qemu")
logdir=$(mktemp -d)
# Reports go to files as well as stderr, so that a report from a QEMU whose
# stderr a test captured still fails this run.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$logdir/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logdir/ubsan"
"$qbuild/tests/unit/test-char" --tap -k
QTEST_QEMU_BINARY="$qemu" "$qbuild/tests/qtest/multiplex-test" --tap -k
# The RSS soak is skipped: ASan's quarantine and shadow memory make RSS grow by design.
CMX_QEMU="$qemu" /usr/bin/python3 -m pytest -v -p no:cacheprovider tests/e2e \
    -k "not memory_stays_bounded" "$@"
# ASan warns once per QEMU process that it does not fully support coroutines'
# makecontext/swapcontext; that warning is not a report.
reports=$(cat "$logdir"/* 2>/dev/null | grep -v 'does not fully support makecontext\|doesn.t fully support makecontext' || true)
if [ -n "$reports" ]; then
    printf '%s\n' "$reports" >&2
    echo "sanitize.sh: sanitizer reports above (in $logdir)" >&2
    exit 1
fi
echo "sanitize.sh: no sanitizer reports"
