#!/usr/bin/env bash
# The main job: install everything, build the patched QEMU, and boot the test
# guest with its serial console going to a log (a pipe passed with -add-fd, as
# virtlogd would hold it) and to a TCP viewer at the same time.
#
#   ./scripts/demo.sh                 # scripted demo, prints what each side saw
#   ./scripts/demo.sh --interactive   # keeps running: connect with telnet yourself
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
./scripts/install-deps.sh >/dev/null
qemu=$(./scripts/qemu/build.sh | tail -n 1)
exec env CMX_QEMU="$qemu" /usr/bin/python3 scripts/demo.py "$@"
