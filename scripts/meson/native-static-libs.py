#!/usr/bin/env python3
"""Prints the linker flags a Rust staticlib needs (`rustc --print native-static-libs`)."""
import subprocess
import sys
import tempfile
import os

rustc = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    src = os.path.join(d, "empty.rs")
    open(src, "w").close()
    r = subprocess.run([rustc, "--crate-type", "staticlib", "--print", "native-static-libs",
                        "-o", os.path.join(d, "libempty.a"), src],
                       capture_output=True, text=True, check=True)
for line in (r.stderr + r.stdout).splitlines():
    if "native-static-libs:" in line:
        print(line.split("native-static-libs:", 1)[1].strip())
        sys.exit(0)
sys.exit("rustc printed no native-static-libs line")
