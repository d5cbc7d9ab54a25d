#!/usr/bin/env python3
"""Builds the chardev-multiplex staticlib with cargo for meson.

Runs `cargo build --locked --release` with the target directory inside the
meson build directory, copies the library to meson's output path (only when
it changed, so dependants are not relinked for nothing) and writes a depfile
from cargo's dep-info so ninja rebuilds when a Rust source changes.
"""
import argparse
import os
import shutil
import subprocess
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cargo", required=True)
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--target-dir", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--depfile", required=True)
    args = ap.parse_args()

    cmd = [args.cargo, "build", "--locked", "--release", "--lib",
           "--manifest-path", args.manifest, "--target-dir", args.target_dir]
    env = dict(os.environ)
    # Meson may run us with its own RUSTFLAGS-free environment; keep cargo quiet
    # about terminal colours in ninja's log.
    env.setdefault("CARGO_TERM_COLOR", "never")
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        print(f"cargo-build.py: `{' '.join(cmd)}` failed with status {r.returncode}",
              file=sys.stderr)
        return r.returncode

    built = os.path.join(args.target_dir, "release", "libchardev_multiplex.a")
    if not (os.path.exists(args.output) and _same(built, args.output)):
        shutil.copy2(built, args.output)

    depinfo = os.path.join(args.target_dir, "release", "libchardev_multiplex.d")
    with open(depinfo) as f:
        deps = f.read().split(":", 1)[1].strip()
    with open(args.depfile, "w") as f:
        f.write(f"{args.output}: {deps}\n")
    return 0


def _same(a: str, b: str) -> bool:
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


if __name__ == "__main__":
    sys.exit(main())
