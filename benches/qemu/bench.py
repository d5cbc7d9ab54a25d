#!/usr/bin/python3
"""Benchmark of the serial console through -chardev multiplex against QEMU's
own ways of logging a console (file, hub, socket logfile=), booting the test
guest (tests/e2e/guest) in the QEMU built by scripts/qemu/build.sh.

    /usr/bin/python3 benches/qemu/bench.py [--out DIR] [--repeats N] ...

or scripts/bench.sh, which installs and builds first.  Not a test: it takes
about 15-20 minutes.  Phases (each configuration repeated, configurations
interleaved round by round so that background load hits all of them):

throughput  guest-to-log MiB/s and QEMU CPU-s/MiB for a ~1 MiB stream, every
            viewer reading; each log checked byte for byte
stall       a viewer asks for the 3.4 MB 'L' stream and stops reading (also:
            no viewer, a reading viewer, a viewer that resumes); log size
            sampled every 0.05 s
echo        1000 keystrokes one at a time through a telnet viewer
syscalls    system calls per streamed byte on all QEMU threads (perf stat on
            the syscall tracepoints, or strace -c -f)
hvc0        the Linux test guest (scripts/linux-guest/build.py) writes 16 MiB to
            its virtio console in 4 KiB writes (dd bs=4096): MiB/s and QEMU
            CPU-s/MiB through file, hub, multiplex and multiplex x8
ttyS0       the same through the kernel's 8250 driver (COM1, 2 MiB)
fanout      cargo bench --bench fanout (the library benchmark)

Output in --out: summary.md (also printed), samples.csv (every raw sample,
long format: phase,config,rep,metric,x,value), stalled-viewer.png, fanout.txt.
"""

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(HERE))

import linux  # noqa: E402
import linux_runs  # noqa: E402
import qemu as q  # noqa: E402
import report  # noqa: E402
import rigs  # noqa: E402
import runs  # noqa: E402

THROUGHPUT = ["file", "hub", "socket+logfile", "multiplex", "multiplex nocoalesce",
              "multiplex fdset-pipe", "multiplex x8", "multiplex ringbuf"]
STALL = [("hub", "stalled"), ("socket+logfile", "stalled"), ("multiplex drop", "stalled"),
         ("multiplex drop nocoalesce", "stalled"),
         ("multiplex", "leaves"), ("multiplex drop", "reads"),
         ("hub", "resumes"), ("socket+logfile", "resumes")]
ECHO = ["multiplex", "multiplex nocoalesce", "hub", "socket"]

LABELS = {
    "file": "file",
    "hub": "hub (file + viewer)",
    "socket+logfile": "socket,logfile= (viewer)",
    "socket": "socket (viewer)",
    "multiplex": "multiplex (file + viewer)",
    "multiplex nocoalesce": "multiplex (file + viewer), coalesce-us=0",
    "multiplex fdset-pipe": "multiplex (fdset pipe + viewer)",
    "multiplex x8": "multiplex x8 (4 files + 4 viewers)",
    "multiplex ringbuf": "multiplex (ringbuf, viewer left): no syscall/byte",
    "hub|stalled": "hub, stalled viewer",
    "socket+logfile|stalled": "socket,logfile=, stalled viewer",
    "multiplex drop|stalled": "multiplex drop, stalled viewer",
    "multiplex drop nocoalesce|stalled": "multiplex drop, coalesce-us=0, stalled viewer",
    "multiplex|leaves": "multiplex, no viewer",
    "multiplex drop|reads": "multiplex drop, reading viewer",
    "hub|resumes": "hub, viewer reads again after a 5 s stall",
    "socket+logfile|resumes": "socket,logfile=, viewer reads again after a 5 s stall",
}
# The Linux guest's consoles: the same configurations on hvc0 and on ttyS0.
LINUX = ["file", "hub", "multiplex", "multiplex x8"]
LINUX_CONSOLES = {"hvc0": "hvc", "ttyS0": "serial"}
for _con in LINUX_CONSOLES:
    for _cfg in LINUX:
        LABELS["%s|%s" % (_con, _cfg)] = "%s: %s" % (_con, LABELS[_cfg])
# Run-time control: the same stream, quiet and with a viewer attached and
# detached every 100 ms.
CONTROL = ["multiplex", "multiplex churn"]
LABELS["control|multiplex"] = "multiplex (file + viewer), no control"
LABELS["control|multiplex churn"] = ("multiplex (file + viewer), a viewer attached and "
                                     "detached every 100 ms")
PHASES = ["throughput", "stall", "echo", "syscalls", "control", "hvc0", "ttyS0", "fanout"]

# With $CMX_BENCH_BASELINE_QEMU (a build of the previous version of the series), the
# multiplex configurations also run in it, interleaved with the current ones.
if rigs.baseline_qemu():
    V1 = rigs.BASELINE
    THROUGHPUT += ["multiplex" + V1, "multiplex x8" + V1]
    STALL += [("multiplex drop" + V1, "stalled")]
    ECHO += ["multiplex" + V1]
    for key in ["multiplex", "multiplex x8", "multiplex drop|stalled"]:
        name, _, how = key.partition("|")
        LABELS[name + V1 + ("|" + how if how else "")] = LABELS[key] + ", previous series (v1)"



def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(REPO / "bench-results"), help="results directory")
    p.add_argument("--guest", help="guest image (default: build tests/e2e/guest)")
    p.add_argument("--phases", default=",".join(PHASES), help="comma-separated subset of "
                   + ",".join(PHASES))
    p.add_argument("--configs", help="comma-separated throughput/syscall configurations to "
                   "run (default: all), e.g. 'multiplex,multiplex v1' for a longer side-by-side")
    p.add_argument("--repeats", type=int, default=5, help="runs per throughput config")
    p.add_argument("--echo-repeats", type=int, default=10, help="runs per echo config")
    p.add_argument("--stall-repeats", type=int, default=3, help="runs per stall config")
    p.add_argument("--lines", type=lambda s: int(s, 0), default=0x13B14,
                   help="lines per throughput stream (default 0x13B14, ~1 MiB)")
    p.add_argument("--keys", type=int, default=1000, help="keystrokes per echo run")
    p.add_argument("--stall-max", type=float, default=60.0, help="max seconds per stall run")
    p.add_argument("--stall-idle", type=float, default=10.0,
                   help="end a stall run once the log did not grow for this long")
    p.add_argument("--syscall-lines", type=lambda s: int(s, 0), default=0x4000,
                   help="lines per stream while counting system calls")
    p.add_argument("--linux-repeats", type=int, default=5,
                   help="runs per configuration of the hvc0 and ttyS0 phases")
    p.add_argument("--hvc0-mib", type=float, default=16, help="MiB written to hvc0 per run")
    p.add_argument("--ttys0-mib", type=float, default=2, help="MiB written to ttyS0 per run")
    p.add_argument("--syscall-tool", choices=["perf", "strace"], default="perf",
                   help="count system calls with perf stat (default) or strace -c")
    args = p.parse_args()
    args.configs = [x for x in (args.configs or "").split(",") if x]
    args.phases = [x for x in args.phases.split(",") if x]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        p.error("unknown phases: %s" % ", ".join(sorted(unknown)))
    if min(args.repeats, args.stall_repeats, args.echo_repeats, args.linux_repeats) < 1:
        p.error("repeats must be >= 1")
    return args


# ---- machine -------------------------------------------------------------

def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "?")
    mem = next((line.split()[1] for line in open("/proc/meminfo")
                if line.startswith("MemTotal")), "0")
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": "%.1f" % (int(mem) / 1024 / 1024),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def load():
    return "%.2f %.2f %.2f" % os.getloadavg()


# ---- running phases ------------------------------------------------------

def interleaved(configs, repeats):
    """(rep, config) round by round; each round starts one config later."""
    for rep in range(repeats):
        k = rep % len(configs)
        for cfg in configs[k:] + configs[:k]:
            yield rep, cfg


def run_phase(name, configs, repeats, measure, describe):
    """{config key: [run dict]}; a failed run is kept as {'error': ...}."""
    results = {key: [] for key, _ in configs}
    total = len(configs) * repeats
    for i, (rep, (key, cfg)) in enumerate(interleaved(configs, repeats), 1):
        started = time.monotonic()
        try:
            r = measure(cfg)
        except Exception as e:  # keep going: one bad run must not lose the others
            traceback.print_exc()
            r = {"error": "%s: %s" % (type(e).__name__, e)}
        r["rep"] = rep
        results[key].append(r)
        print("[%s %d/%d] %s #%d (%.0f s, load %s): %s" % (
            name, i, total, LABELS.get(key, key), rep + 1, time.monotonic() - started,
            load(), r.get("error") or describe(r)), file=sys.stderr, flush=True)
    return results


def chosen(configs, args):
    """The configurations --configs asks for (all by default); an unknown name is an error."""
    if not args.configs:
        return configs
    unknown = [c for c in args.configs if c not in configs]
    if unknown:
        sys.exit("bench.py: unknown --configs %s (known: %s)" % (", ".join(unknown),
                                                                ", ".join(configs)))
    return args.configs


def throughput_phase(args, guest, tmp):
    return run_phase("throughput", [(c, c) for c in chosen(THROUGHPUT, args)], args.repeats,
                     lambda c: runs.throughput(c, args.lines, guest, tmp),
                     lambda r: "%.3f MiB/s, %.2f CPU-s/MiB, exact=%s" % (
                         r["mib_s"], r["cpu_s_per_mib"], r["exact"]))


def stall_phase(args, guest, tmp):
    configs = [("%s|%s" % c, c) for c in STALL]
    return run_phase("stall", configs, args.stall_repeats,
                     lambda c: runs.stalled(c[0], c[1], guest, tmp, args.stall_max,
                                            args.stall_idle),
                     lambda r: "finished=%s t_end=%s log=%d %s %s" % (
                         r["finished"], r["t_end"] and "%.1f" % r["t_end"], r["log_bytes"],
                         r["verdict"], r["detail"]))


def echo_phase(args, guest, tmp):
    return run_phase("echo", [(c, c) for c in ECHO], args.echo_repeats,
                     lambda c: runs.echo(c, args.keys, guest, tmp),
                     lambda r: "median %.3f ms, p99 %.3f ms" % (
                         report.median(r["rtt_ms"]), report.p99(r["rtt_ms"])))


def syscalls_phase(args, guest, tmp):
    return run_phase("syscalls", [(c, c) for c in chosen(THROUGHPUT, args)], 1,
                     lambda c: runs.syscalls(c, args.syscall_lines, guest, tmp,
                                             args.syscall_tool),
                     lambda r: "%.3f syscalls/byte" % sum(r["per_byte"].values()))


def control_phase(args, guest, tmp):
    configs = [("control|" + c, c) for c in CONTROL]
    return run_phase("control", configs, args.repeats,
                     lambda c: runs.churn("multiplex", args.lines, guest, tmp,
                                          period=0.1 if c.endswith("churn") else 0),
                     lambda r: "%.3f MiB/s, %.2f CPU-s/MiB, %d attach/detach, exact=%s" % (
                         r["mib_s"], r["cpu_s_per_mib"], r["ticks"], r["exact"]))


def linux_phase(name, args, tmp):
    """hvc0 or ttyS0 of the Linux guest: dd bs=4096 of a file through each configuration."""
    linux.check_firmware()
    gdir = linux.guest_dir()
    console = LINUX_CONSOLES[name]
    mib = args.hvc0_mib if name == "hvc0" else args.ttys0_mib
    configs = [("%s|%s" % (name, c), c) for c in LINUX]
    return run_phase(name, configs, args.linux_repeats,
                     lambda c: linux_runs.throughput(c, console, int(mib * report.MIB), gdir,
                                                     tmp),
                     lambda r: "%.3f MiB/s, %.3f CPU-s/MiB, exact=%s" % (
                         r["mib_s"], r["cpu_s_per_mib"], r["exact"]))


def fanout_phase(out):
    """cargo bench --bench fanout; its table (stdout) is kept verbatim."""
    proc = subprocess.run(["cargo", "bench", "--bench", "fanout"], cwd=REPO,
                          stdout=subprocess.PIPE, text=True)
    (out / "fanout.txt").write_text(proc.stdout)
    if proc.returncode:
        return "cargo bench failed with exit code %d\n%s" % (proc.returncode, proc.stdout)
    return proc.stdout


# ---- summary -------------------------------------------------------------

def summary(args, meta, results, fanout):
    tp, st, ec = (results.get(k, {}) for k in ("throughput", "stall", "echo"))
    parts = ["# QEMU serial console benchmark", "",
             "machine: %(nproc)s CPUs, %(cpu)s, %(memory_gib)s GiB, Linux %(kernel)s" % meta,
             "load average (1/5/15 min): %s at start, %s at end" % (
                 meta["load_start"], meta["load_end"]),
             "QEMU: %s" % meta["binaries"],
             "guest: %s" % (args.guest or "tests/e2e/guest (built)"),
             "started %s, took %.1f min" % (meta["started"], meta["minutes"]), ""]
    if tp:
        parts += ["## Throughput: %d-line stream (%.2f MiB), every viewer reading, %d runs" % (
            args.lines, len(q.expected_reply(args.lines)) / report.MIB, args.repeats),
            "", report.throughput_table(tp, LABELS), ""]
    if st:
        parts += ["## Stalled viewer: 'L' stream (3.25 MiB), viewer SO_RCVBUF %d, %d runs" % (
            runs.STALL_RCVBUF, args.stall_repeats), "",
            "Runs end when END reaches the log, after %.0f s, or after %.0f s without "
            "growth. Plot: stalled-viewer.png" % (args.stall_max, args.stall_idle), "",
            report.stall_table(st, LABELS), ""]
    if ec:
        parts += ["## Echo latency: %d keystrokes per run, one at a time, %d runs" % (
            args.keys, args.echo_repeats), "", report.echo_table(ec, LABELS), ""]
    if results.get("syscalls"):
        parts += ["## System calls per streamed byte (%s, %d-line stream)" % (
                  args.syscall_tool, args.syscall_lines), "",
                  report.syscall_table(results["syscalls"], tp, LABELS), ""]
    if results.get("control"):
        parts += ["## Run-time control: %d-line stream, a viewer attached and detached every "
                  "100 ms, %d runs" % (args.lines, args.repeats), "",
                  report.throughput_table(results["control"], LABELS), ""]
    for name in LINUX_CONSOLES:
        if results.get(name):
            mib = args.hvc0_mib if name == "hvc0" else args.ttys0_mib
            parts += ["## Linux guest, %s: %g MiB in 4 KiB writes (dd bs=4096), %d runs" % (
                name, mib, args.linux_repeats), "",
                report.throughput_table(results[name], LABELS), ""]
    if fanout is not None:
        parts += ["## Library benchmark (cargo bench --bench fanout)", "", "```",
                  fanout.rstrip(), "```", ""]
    items = report.targets(tp, st, ec)
    items += report.control_targets(results.get("control", {}))
    for name in LINUX_CONSOLES:
        items += report.linux_targets(name, results.get(name, {}))
    if items:
        parts += ["## Targets", "", report.targets_text(items), ""]
    return "\n".join(parts)


def main():
    # On SIGTERM unwind like on Ctrl-C, so that every QEMU started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = machine()
    meta.update(load_start=load(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
    t0 = time.monotonic()
    results, fanout = {}, None
    with tempfile.TemporaryDirectory(prefix="cmx-bench-") as tmp:
        guest = args.guest or q.build_guest(Path(tmp) / "guest")
        phases = {"throughput": throughput_phase, "stall": stall_phase,
                  "echo": echo_phase, "syscalls": syscalls_phase, "control": control_phase}
        for name in args.phases:
            if name in phases:
                results[name] = phases[name](args, guest, tmp)
            elif name in LINUX_CONSOLES:
                results[name] = linux_phase(name, args, tmp)
    if "fanout" in args.phases:
        print("[fanout] cargo bench --bench fanout ...", file=sys.stderr, flush=True)
        fanout = fanout_phase(out)
    meta.update(load_end=load(), minutes=(time.monotonic() - t0) / 60,
                binaries=", ".join(sorted({r["binary"] for ph in results.values()
                                           for rs in ph.values() for r in rs if "binary" in r})))
    report.write_csv(out / "samples.csv", results, meta)
    if results.get("stall"):
        report.plot_stall(out / "stalled-viewer.png", results["stall"], LABELS,
                          "Guest log with a viewer that stops reading (%s)" % meta["cpu"])
    text = summary(args, meta, results, fanout)
    (out / "summary.md").write_text(text + "\n")
    print(text)
    print("\nresults in %s: summary.md, samples.csv%s" % (
        out, ", stalled-viewer.png" if results.get("stall") else ""))


if __name__ == "__main__":
    main()
