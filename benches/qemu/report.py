"""Summary tables, targets, the CSV of raw samples and the stalled-viewer plot."""

import csv
import statistics

import qemu as q

MIB = 1024 * 1024


# ---- small statistics ----------------------------------------------------

def ok_runs(runs):
    return [r for r in runs if "error" not in r]


def values(runs, key):
    return [r[key] for r in ok_runs(runs) if r.get(key) is not None]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def p99(xs):
    return statistics.quantiles(xs, n=100, method="inclusive")[98] if len(xs) > 1 else median(xs)


def spread(xs, fmt="%.3f"):
    """'median (min-max)'."""
    if not xs:
        return "-"
    return "%s (%s-%s)" % (fmt % median(xs), fmt % min(xs), fmt % max(xs))


def md_table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def errors(runs):
    return len(runs) - len(ok_runs(runs))


# ---- tables --------------------------------------------------------------

def throughput_table(results, labels):
    rows = []
    for cfg, runs in results.items():
        rows.append([
            labels.get(cfg, cfg), len(ok_runs(runs)),
            spread(values(runs, "mib_s")),
            spread(values(runs, "cpu_s_per_mib"), "%.2f"),
            "%.2f" % median(values(runs, "user_s_per_mib")),
            "%.2f" % median(values(runs, "sys_s_per_mib")),
            "%d/%d" % (sum(r["exact"] for r in ok_runs(runs)), len(runs)),
        ])
    return md_table(["configuration", "runs", "MiB/s median (min-max)",
                     "QEMU CPU-s/MiB median (min-max)", "user", "sys", "log byte-exact"], rows)


def stall_table(results, labels):
    rows = []
    for cfg, runs in results.items():
        good = ok_runs(runs)
        rows.append([
            labels.get(cfg, cfg), len(good),
            "%d/%d" % (sum(r["finished"] for r in good), len(runs)),
            spread(values(runs, "t_end"), "%.1f"),
            spread(values(runs, "mib_s")),
            spread(values(runs, "tail_mib_s")),
            spread(values(runs, "cpu_s_per_mib"), "%.2f"),
            spread([r["log_bytes"] / MIB for r in good], "%.2f"),
            "; ".join(sorted({_verdict(r) for r in good})),
            _viewer_stats(good),
        ])
    return md_table(["configuration", "runs", "guest finished", "s to END", "MiB/s",
                     "MiB/s, last 10%", "QEMU CPU-s/MiB", "log MiB at end",
                     "log vs. guest output", "viewer (multiplex stats)"], rows)


def _verdict(r):
    return r["verdict"] + (": " + r["detail"] if r["verdict"] == "duplicates" else "")


def _viewer_stats(runs):
    parts = []
    for r in runs:
        view = r["stats"].get("tcp")
        if view:
            parts.append("%s, dropped %d, bp %d" % (view["state"], view["dropped"],
                                                   view["backpressure-events"]))
    return "; ".join(sorted(set(parts))) or "-"


def echo_table(results, labels):
    rows = []
    for cfg, runs in results.items():
        pooled = [x for r in ok_runs(runs) for x in r["rtt_ms"]]
        rows.append([
            labels.get(cfg, cfg), len(ok_runs(runs)), len(pooled),
            "%.3f" % median(pooled), "%.3f" % p99(pooled),
            spread([p99(r["rtt_ms"]) for r in ok_runs(runs)]),
            "%.3f" % max(pooled) if pooled else "-",
        ])
    return md_table(["configuration", "runs", "keystrokes", "median ms", "p99 ms",
                     "p99 per run (min-max)", "max ms"], rows)


def syscall_table(results, throughput, labels, floor="multiplex ringbuf"):
    """Calls per streamed byte, and the QEMU CPU per system call they imply
    (CPU above the no-syscall floor / calls per MiB)."""
    floor_cpu = median(values(throughput.get(floor, []), "cpu_s_per_mib"))
    rows = []
    for cfg, runs in results.items():
        for r in ok_runs(runs):
            per_byte = r["per_byte"]
            total = sum(per_byte.values())
            top = sorted(per_byte.items(), key=lambda kv: -kv[1])[:4]
            cpu = median(values(throughput.get(cfg, []), "cpu_s_per_mib"))
            extra = cpu - floor_cpu
            cost = (extra / (total * MIB) * 1e6
                    if cfg != floor and total > 0.5 and extra > 0 else None)
            rows.append([labels.get(cfg, cfg), "%.3f" % total,
                         ", ".join("%s %.3f" % kv for kv in top),
                         "%.2f" % extra if cfg != floor else "(floor)",
                         "%.2f" % cost if cost is not None else "-"])
    return md_table(["configuration", "syscalls/byte", "top syscalls/byte",
                     "CPU-s/MiB above floor", "us CPU per syscall"], rows)


# ---- targets -------------------------------------------------------------

def targets(tp, stall, echo):
    """[(statement, met: bool or None, evidence)]"""
    out = []
    drop = stall.get("multiplex drop|stalled", [])
    none = stall.get("multiplex|leaves", [])
    if drop and none:
        ratio = median(values(drop, "mib_s")) / median(values(none, "mib_s"))
        done = all(r["finished"] for r in ok_runs(drop)) and not errors(drop)
        exact = all(r["verdict"] == "exact" for r in ok_runs(drop))
        why = "median %.3f vs %.3f MiB/s = %.0f%%; finished %d/%d; QEMU CPU %.2f vs %.2f s/MiB" % (
            median(values(drop, "mib_s")), median(values(none, "mib_s")), 100 * ratio,
            sum(r["finished"] for r in ok_runs(drop)), len(drop),
            median(values(drop, "cpu_s_per_mib")), median(values(none, "cpu_s_per_mib")))
        tail_d, tail_n = median(values(drop, "tail_mib_s")), median(values(none, "tail_mib_s"))
        if tail_d == tail_d and tail_n == tail_n:  # not NaN: the runs were long enough
            why += "; last 10%% of the stream %.3f vs %.3f MiB/s = %.0f%%" % (
                tail_d, tail_n, 100 * tail_d / tail_n)
        out.append(("stalled viewer, drop: guest finishes at >= 90% of its no-viewer speed",
                    done and ratio >= 0.9, why))
        out.append(("stalled viewer, drop: log byte-exact", exact and not errors(drop),
                    ", ".join(_verdict(r) for r in ok_runs(drop))))
    mux, hub = tp.get("multiplex", []), tp.get("hub", [])
    if mux and hub:
        m, h = median(values(mux, "mib_s")), median(values(hub, "mib_s"))
        out.append(("reading viewer: multiplex throughput >= 95% of hub", m >= 0.95 * h,
                    "%.3f vs %.3f MiB/s = %.1f%%" % (m, h, 100 * m / h)))
        m, h = median(values(mux, "cpu_s_per_mib")), median(values(hub, "cpu_s_per_mib"))
        out.append(("reading viewer: multiplex CPU per MiB <= 105% of hub", m <= 1.05 * h,
                    "%.2f vs %.2f CPU-s/MiB = %.1f%%" % (m, h, 100 * m / h)))
    mux, fil = tp.get("multiplex", []), tp.get("file", [])
    if mux and fil:
        m, f = median(values(mux, "mib_s")), median(values(fil, "mib_s"))
        mc, fc = median(values(mux, "cpu_s_per_mib")), median(values(fil, "cpu_s_per_mib"))
        out.append(("coalescing: multiplex (file + viewer) faster and cheaper than a plain "
                    "file backend", m > f and mc < fc,
                    "%.3f vs %.3f MiB/s = %.1fx; %.2f vs %.2f CPU-s/MiB = %.1fx cheaper"
                    % (m, f, m / f, mc, fc, fc / mc)))
    for cfg in ("multiplex", "multiplex x8"):
        out += _versus_v1(tp, cfg)
    pooled = {c: [x for r in ok_runs(echo.get(c, [])) for x in r["rtt_ms"]]
              for c in ("multiplex", "multiplex nocoalesce", "hub")}
    m, h, n = pooled["multiplex"], pooled["hub"], pooled["multiplex nocoalesce"]
    if m and h:
        # Per round, like the other side-by-side targets: the two runs of a
        # round saw the same background load, the pooled p99s did not.
        hub_by_rep = {r["rep"]: p99(r["rtt_ms"]) for r in ok_runs(echo["hub"])}
        ratios = sorted(p99(r["rtt_ms"]) / hub_by_rep[r["rep"]]
                        for r in ok_runs(echo["multiplex"]) if r["rep"] in hub_by_rep)
        out.append(("echo p99: multiplex no worse than hub", _bound(ratios, 1.0, False),
                    "p99 ratio multiplex/hub per round: median %.3f, min %.3f, max %.3f "
                    "over %d rounds; pooled p99 %.3f vs %.3f ms; medians %.3f vs %.3f ms"
                    % (median(ratios), ratios[0], ratios[-1], len(ratios), p99(m), p99(h),
                       median(m), median(h))))
    if m and n:
        out.append(("coalescing adds no echo latency a person would notice (< 1 ms)",
                    p99(m) - p99(n) < 1.0,
                    "p99 %.3f ms with coalescing vs %.3f ms with coalesce-us=0; medians "
                    "%.3f vs %.3f ms" % (p99(m), p99(n), median(m), median(n))))
    return out


def _versus_v1(tp, cfg):
    """No regression against the previous series, run side by side: the ratio of
    each round's pair (runs are interleaved round by round), judged only where
    the whole spread is on one side of the bound."""
    new, old = ok_runs(tp.get(cfg, [])), ok_runs(tp.get(cfg + " v1", []))
    if not new or not old:
        return []
    out = []
    for metric, bound, better in (("mib_s", 0.95, "higher"), ("cpu_s_per_mib", 1.05, "lower")):
        ratios = sorted(a[metric] / b[metric] for a, b in zip(new, old))
        lo, mid, hi = ratios[0], median(ratios), ratios[-1]
        if better == "higher":
            met = True if lo >= bound else False if hi < bound else None
            what = "%s: throughput >= %d%% of the previous series" % (cfg, 100 * bound)
        else:
            met = True if hi <= bound else False if lo > bound else None
            what = "%s: CPU per MiB <= %d%% of the previous series" % (cfg, 100 * bound)
        out.append((what, met, "ratio this/previous per round: median %.3f, min %.3f, "
                    "max %.3f over %d rounds" % (mid, lo, hi, len(ratios))))
    return out


def _paired_ratios(a_runs, b_runs, metric):
    """a/b of `metric` for each round in which both ran (runs are interleaved
    round by round, so a round's pair saw the same background load)."""
    b_by_rep = {r["rep"]: r for r in ok_runs(b_runs)}
    return sorted(r[metric] / b_by_rep[r["rep"]][metric] for r in ok_runs(a_runs)
                  if r["rep"] in b_by_rep and b_by_rep[r["rep"]][metric])


def _bound(ratios, bound, higher_is_better):
    """met (True), not met (False) or undecided (None): a verdict only where the
    whole spread of the per-round ratios is on one side of the bound."""
    lo, hi = ratios[0], ratios[-1]
    if higher_is_better:
        return True if lo >= bound else False if hi < bound else None
    return True if hi <= bound else False if lo > bound else None


def linux_targets(console, results):
    """The Linux guest's console (hvc0, ttyS0): multiplex (file + viewer) at least
    0.95x a plain file backend's throughput, and no more CPU per MiB than hub."""
    out = []
    mux = results.get("%s|multiplex" % console, [])
    for other, metric, bound, higher, what in (
            ("file", "mib_s", 0.95, True, "throughput >= 95% of a plain file backend"),
            ("hub", "cpu_s_per_mib", 1.0, False, "CPU per MiB <= hub's")):
        ratios = _paired_ratios(mux, results.get("%s|%s" % (console, other), []), metric)
        if not ratios:
            continue
        a = median(values(mux, metric))
        b = median(values(results["%s|%s" % (console, other)], metric))
        out.append(("%s: multiplex (file + viewer) %s" % (console, what),
                    _bound(ratios, bound, higher),
                    "medians %.3f vs %.3f; ratio multiplex/%s per round: median %.3f, "
                    "min %.3f, max %.3f over %d rounds" % (
                        a, b, other, median(ratios), ratios[0], ratios[-1], len(ratios))))
    return out


def control_targets(results):
    """Attaching and detaching a viewer every 100 ms costs the guest at most 5% of
    its throughput: churn/quiet per round >= 0.95."""
    churn = results.get("control|multiplex churn", [])
    quiet = results.get("control|multiplex", [])
    ratios = _paired_ratios(churn, quiet, "mib_s")
    if not ratios:
        return []
    return [("run-time control: throughput with a viewer attached and detached every 100 ms "
             ">= 95% of without", _bound(ratios, 0.95, True),
             "medians %.3f vs %.3f MiB/s; ratio per round: median %.3f, min %.3f, max %.3f "
             "over %d rounds" % (median(values(churn, "mib_s")), median(values(quiet, "mib_s")),
                                 median(ratios), ratios[0], ratios[-1], len(ratios)))]


def targets_text(items):
    verdict = {True: "met", False: "NOT met", None: "undecided (the spread straddles it)"}
    return "\n".join("- %s: **%s** (%s)" % (what, verdict[met], why)
                     for what, met, why in items)


# ---- CSV -----------------------------------------------------------------

def csv_rows(results, meta):
    """(phase, config, rep, metric, x, value): every raw sample."""
    for key, value in meta.items():
        yield ("meta", "", "", key, "", value)
    for phase, configs in results.items():
        for cfg, runs in configs.items():
            for r in runs:
                yield from _run_rows(phase, cfg, r)


def _run_rows(phase, cfg, r):
    rep = r.get("rep", "")
    row = lambda metric, x, value: (phase, cfg, rep, metric, x, value)
    if "error" in r:
        yield row("error", "", r["error"])
        return
    for key, value in r.items():
        if key in ("rep", "samples", "rtt_ms", "per_byte", "stats"):
            continue
        yield row(key, "", value)
    for t, size in r.get("samples", []):
        yield row("log_size_at_t", "%.3f" % t, size)
    for i, ms in enumerate(r.get("rtt_ms", [])):
        yield row("rtt_ms", i, "%.4f" % ms)
    for name, n in sorted(r.get("per_byte", {}).items()):
        yield row("syscalls_per_byte", name, "%.5f" % n)
    for chardev, stats in sorted(r.get("stats", {}).items()):
        for k in ("offered", "delivered", "queued", "dropped", "backpressure-events", "state"):
            yield row("%s.%s" % (chardev, k), "", stats[k])


def write_csv(path, results, meta):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["phase", "config", "rep", "metric", "x", "value"])
        w.writerows(csv_rows(results, meta))


# ---- plot ----------------------------------------------------------------

PANELS = (("stalled", "leaves"), ("reads", "resumes"))
PANEL_TITLES = ("viewer never reads (and no viewer)", "viewer reads, or reads again after a stall")


def plot_stall(path, stall, labels, title):
    """Log size over time, one line per run, one color per configuration;
    left: viewers that never read, right: reading and resuming viewers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(14, 6), sharey=True)
    full = len(q.BANNER + q.expected_reply(q.LINES_L)) / MIB
    for i, (cfg, runs) in enumerate(stall.items()):
        ax = axes[0 if cfg.split("|")[-1] in PANELS[0] else 1]
        for j, r in enumerate(ok_runs(runs)):
            ax.plot([t for t, _ in r["samples"]], [n / MIB for _, n in r["samples"]],
                    color="C%d" % i, lw=1.2, alpha=0.8,
                    label=labels.get(cfg, cfg) if j == 0 else None)
    for ax, sub in zip(axes, PANEL_TITLES):
        ax.axhline(full, color="gray", ls="--", lw=0.8, label="whole stream (END)")
        ax.set_title(sub, fontsize=10)
        ax.set_xlabel("seconds since the viewer asked for the 'L' stream")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    axes[0].set_ylabel("log size, MiB")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
