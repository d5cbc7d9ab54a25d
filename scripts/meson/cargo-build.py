#!/usr/bin/env python3
"""Builds the chardev-multiplex staticlib with cargo for meson.

Runs `cargo build --locked` with the target directory inside the meson build
directory, copies the library to meson's output path (only when it changed,
so dependants are not relinked for nothing) and writes a depfile from cargo's
dep-info so ninja rebuilds when a Rust source changes.

--profile release|dev follows meson's build type, --target the cross file's
host (a Rust target triple), and --offline QEMU's --disable-download: cargo
then takes the crates from $CMX_CARGO_VENDOR_DIR (scripts/vendor-crates.sh
fills it) if that is set, else from cargo's own cache, and never from the
network.
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
    ap.add_argument("--profile", choices=["release", "dev"], default="release")
    ap.add_argument("--target", default="")
    ap.add_argument("--offline", action="store_true")
    args = ap.parse_args()

    cmd = [args.cargo, "build", "--locked", "--lib", "--profile", args.profile,
           "--manifest-path", args.manifest, "--target-dir", args.target_dir]
    if args.target:
        cmd += ["--target", args.target]
    if args.offline:
        cmd.append("--offline")
        vendor = os.environ.get("CMX_CARGO_VENDOR_DIR")
        if vendor:
            cmd += ["--config", 'source.crates-io.replace-with="vendored-sources"',
                    "--config", 'source.vendored-sources.directory="%s"' % vendor]
    env = dict(os.environ)
    env.setdefault("CARGO_TERM_COLOR", "never")
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        hint = (" (offline: run scripts/vendor-crates.sh and set CMX_CARGO_VENDOR_DIR, or "
                "configure QEMU without --disable-download)" if args.offline else "")
        print(f"cargo-build.py: `{' '.join(cmd)}` failed with status {r.returncode}{hint}",
              file=sys.stderr)
        return r.returncode

    out_dir = os.path.join(args.target_dir, args.target,
                           "release" if args.profile == "release" else "debug")
    built = os.path.join(out_dir, "libchardev_multiplex.a")
    if not (os.path.exists(args.output) and _same(built, args.output)):
        shutil.copy2(built, args.output)

    with open(os.path.join(out_dir, "libchardev_multiplex.d")) as f:
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
