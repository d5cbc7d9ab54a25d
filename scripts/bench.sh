#!/usr/bin/env bash
# Benchmark of the serial console through -chardev multiplex against file, hub and
# socket logfile= in the patched QEMU (benches/qemu/bench.py), then the library
# benchmark (cargo bench --bench fanout); the Linux guest's hvc0 and ttyS0 through the same
# configurations (phases hvc0, ttyS0). Takes about 35 minutes; not part of the tests.
#
#   scripts/bench.sh [--out DIR] [bench.py options...]    # default DIR: bench-results/
#
# Writes DIR/summary.md (also printed), DIR/samples.csv, DIR/stalled-viewer.png and
# DIR/fanout.txt. See benches/qemu/RESULTS.md for a run and how to read it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

./scripts/install-deps.sh
# System-call counts: perf stat on the syscall tracepoints (strace as the alternative).
for p in linux-perf strace; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
        || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p"
done
qemu=$(./scripts/qemu/build.sh | tail -n 1)
echo "bench.sh: QEMU $qemu" >&2
exec /usr/bin/python3 benches/qemu/bench.py "$@"
