#!/usr/bin/env python3
"""Prints the linker flags a Rust staticlib needs (`rustc --print native-static-libs`).

    native-static-libs.py RUSTC [TARGET]

TARGET is a Rust target triple for a cross build (empty or absent: the host).
"""
import os
import subprocess
import sys
import tempfile

rustc = sys.argv[1]
target = sys.argv[2] if len(sys.argv) > 2 else ""
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "empty.rs")
    open(src, "w").close()
    cmd = [rustc, "--crate-type", "staticlib", "--print", "native-static-libs",
           "-o", os.path.join(d, "libempty.a"), src]
    if target:
        cmd += ["--target", target]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit("native-static-libs.py: `%s` failed:\n%s" % (" ".join(cmd), r.stderr))
for line in (r.stderr + r.stdout).splitlines():
    if "native-static-libs:" in line:
        print(line.split("native-static-libs:", 1)[1].strip())
        sys.exit(0)
sys.exit("rustc printed no native-static-libs line")
