#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The report of make bench, from the guest's and the host's results.

Usage: report.py RESULTS OUTDIR [--check] [--fs "NAMES"] [--host HOSTRESULTS
                 [--host-fs "NAMES"]]

RESULTS (the guest's, guest.sh; "-": none) and HOSTRESULTS (host.sh's) each hold
bench.jsonl (one measurement a line) and fio-FS-BENCH-REP.json (fio's JSON output);
HOSTRESULTS also host.txt (the machine). Writes OUTDIR/bench.json (every figure:
median, min, max, the samples; the host's under "host"), OUTDIR/bench.md (for each of
guest and host a table of speed ratios to ext4 data=ordered of the same run, > 1 is
faster; the memory-pressure check) and, unless --check, OUTDIR/bench.png (the ratios as
bars; needs matplotlib). Prints the tables. --check (make check's smoke test): every
benchmark of every file system must have produced a number and every memory-pressure
check its figures within their limits; ends with "N passed, N failed" (both runs).
"""
import argparse
import glob
import json
import os
import re
import statistics
import sys

BASE = "ext4-ordered"
# Benchmark -> (unit, higher is better). fio figures are throughput (MiB/s) or IOPS.
FIO = {
    "seqwrite-alloc": ("MiB/s", "write", "bw"),
    "seqwrite": ("MiB/s", "write", "bw"),
    "seqread-cold": ("MiB/s", "read", "bw"),
    "randread-cold": ("IOPS", "read", "iops"),
    "randread-warm": ("IOPS", "read", "iops"),
    "randwrite": ("IOPS", "write", "iops"),
    "fsync-loop": ("IOPS", "write", "iops"),
}
ORDER = list(FIO) + [f"meta-{p}-{t}t" for t in (1, 4) for p in ("create", "stat", "unlink")] + [
    "untar", "git-clone"]
LOWER_IS_BETTER = {"untar", "git-clone"}
# The memory-pressure check (common.sh's pressure): the file systems it runs on and the
# checks each must pass, guest and host.
PRESSURE = {
    "guest": {"ext4-ordered": ["slab-left", "inodes-left", "cache-left"],
              "xv6fs": ["slab-left", "inodes-left", "cache-left"],
              "fuse-xv6fs": ["slab-left", "inodes-left", "cache-left", "fuse-hwm",
                             "fuse-regrowth"]},
    "host": {"fuse-xv6fs": ["fuse-hwm", "fuse-regrowth"]},
}
POINTS = ("base", "loaded", "dropped", "again")
COLOURS = ["ext4-journal", "xv6fs", "fuse-xv6fs", "tmpfs"]  # the plot's, by index


def load(results):
    samples = {}  # (fs, bench) -> [values]
    units = {}
    for path in glob.glob(os.path.join(results, "fio-*.json")):
        m = re.match(r"fio-(.+)-(\d+)\.json$", os.path.basename(path))
        bench = next((b for b in FIO if m and m.group(1).endswith("-" + b)), None)
        if not bench:
            continue
        fs = m.group(1)[:-len(bench) - 1]
        unit, side, key = FIO[bench]
        try:
            with open(path) as f:
                text = f.read()
            job = json.loads(text[text.index("{"):])["jobs"][0][side]
        except (ValueError, KeyError, IndexError):
            continue
        value = job["bw"] / 1024.0 if key == "bw" else job["iops"]
        samples.setdefault((fs, bench), []).append(value)
        units[bench] = unit
    path = os.path.join(results, "bench.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                samples.setdefault((r["fs"], r["bench"]), []).append(float(r["value"]))
                units[r["bench"]] = r["unit"]
    return samples, units


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "samples": values}


def ratio(bench, value, base):
    if not base:
        return None
    if bench in LOWER_IS_BETTER:
        return base / value if value else None
    return value / base



GUEST_WHERE = "QEMU guest under TCG (2 vCPUs): only ratios within this run mean anything"
HOST_WHERE = "host, no emulation (the FUSE build, host ext4 on a loop device, tmpfs)"


class Run:
    """The results of one run (guest or host) and the file systems to report."""

    def __init__(self, results, fses, label):
        self.samples, self.units = load(results)
        self.fses = fses or sorted({fs for fs, _ in self.samples})
        self.benches = [b for b in ORDER if any((fs, b) in self.samples for fs in self.fses)]
        self.label = label
        self.machine = []
        path = os.path.join(results, "host.txt")
        if os.path.exists(path):
            with open(path) as f:
                self.machine = [line.strip() for line in f if line.strip()]

    def json(self, where):
        report = {"where": where, "base": BASE, "benchmarks": {}}
        if self.machine:
            report["machine"] = self.machine
        for (fs, bench), values in sorted(self.samples.items()):
            report["benchmarks"].setdefault(bench, {"unit": self.units.get(bench, "")})[fs] = \
                summary(values)
        return report

    def ratio_of(self, fs, bench):
        base, v = self.samples.get((BASE, bench)), self.samples.get((fs, bench))
        return ratio(bench, statistics.median(v), statistics.median(base)) \
            if base and v else None

    def table(self):
        lines = ["| benchmark | unit | " + " | ".join(self.fses) + " |",
                 "|---|---|" + "---|" * len(self.fses)]
        for bench in self.benches:
            cells = []
            for fs in self.fses:
                v = self.samples.get((fs, bench))
                if not v:
                    cells.append("–")
                    continue
                r = self.ratio_of(fs, bench)
                spread = f" [{min(v):.4g}–{max(v):.4g}]" if len(v) > 1 else ""
                cells.append((f"**{r:.2f}×** " if r is not None and fs != BASE else "") +
                             f"{statistics.median(v):.4g}{spread}")
            lines.append(f"| {bench} | {self.units.get(bench, '')} | " + " | ".join(cells) +
                         " |")
        return "\n".join(lines)

    def pressure(self):
        """The memory-pressure figures: {fs: {"files", "figures": {what: {point: v}},
        "checks": {check: {"value", "limit", "unit", "ok"}}}}."""
        out = {}
        for (fs, bench), values in self.samples.items():
            parts = bench.split(":")
            if parts[0] not in ("pressure", "pressure-value", "pressure-limit"):
                continue
            p = out.setdefault(fs, {"files": None, "figures": {}, "checks": {}})
            if bench == "pressure:files":
                p["files"] = int(values[0])
            elif parts[0] == "pressure" and len(parts) == 3 and parts[2] in POINTS:
                p["figures"].setdefault(parts[1], {})[parts[2]] = values[0]
            elif len(parts) == 2:
                c = p["checks"].setdefault(parts[1], {"unit": self.units.get(bench, "")})
                c["value" if parts[0] == "pressure-value" else "limit"] = values[0]
        for p in out.values():
            for c in p["checks"].values():
                c["ok"] = "value" in c and "limit" in c and c["value"] <= c["limit"]
        return out

    def pressure_text(self):
        """The memory-pressure section of bench.md (empty without figures)."""
        pressure = self.pressure()
        fses = [fs for fs in self.fses if fs in pressure]
        if not fses:
            return ""
        cols = [("Slab", "slab", 1024), ("SReclaimable", "SReclaimable", 1024),
                ("SUnreclaim", "SUnreclaim", 1024), ("Cached", "page cache", 1024),
                ("inodes", "inodes", 1), ("fuse-VmRSS", "FUSE daemon RSS", 1024),
                ("fuse-VmHWM", "FUSE daemon peak RSS", 1024)]
        cols = [c for c in cols if any(c[0] in pressure[fs]["figures"] for fs in fses)]
        note = ""
        reclaimable = [v for fs in fses
                       for v in pressure[fs]["figures"].get("SReclaimable", {}).values()]
        if reclaimable and not any(reclaimable):
            # CONFIG_SLUB_TINY (the guest's tinyconfig) turns SLAB_RECLAIM_ACCOUNT off.
            cols = [c for c in cols if c[0] not in ("SReclaimable", "SUnreclaim")]
            note = (" SReclaimable stays 0 (the kernel's SLUB_TINY ignores "
                    "SLAB_RECLAIM_ACCOUNT: all slab is SUnreclaim) and there is no "
                    "/proc/slabinfo (no SLUB_DEBUG): slab is the total.")

        def fmt(v, scale):
            return f"{v / scale:.1f}" if scale != 1 else f"{v:.0f}"
        lines = ["| file system | files | " + " | ".join(
            label + (" (MiB)" if scale != 1 else "") for _, label, scale in cols) +
            " | checks |", "|---|---|" + "---|" * len(cols) + "---|"]
        for fs in fses:
            p = pressure[fs]
            cells = []
            for what, _, scale in cols:
                f = p["figures"].get(what)
                cells.append(" → ".join(fmt(f[pt], scale) if pt in f else "?"
                                        for pt in POINTS) if f else "–")
            checks = []
            for name, c in sorted(p["checks"].items()):
                scale = 1024 if c["unit"] == "kB" else 1
                unit = " MiB" if scale != 1 else ""
                checks.append(f"{name} {fmt(c.get('value', float('nan')), scale)} (limit "
                              f"{fmt(c.get('limit', float('nan')), scale)}{unit}): "
                              + ("ok" if c["ok"] else "**FAILED**"))
            lines.append(f"| {fs} | {p['files'] or '?'} | " + " | ".join(cells) + " | " +
                         "; ".join(checks) + " |")
        return ("\nMemory under pressure: the files made (a block each, directories of "
                "1000), sync and drop_caches, a stat of every file and drop_caches again "
                "(figures before the files → with them → after the drop → after the stat "
                "and the second drop; the checks' limits: common.sh's pressure)." + note +
                "\n\n" +
                "\n".join(lines) + "\n")

    def memory(self, slab=True):
        """The memory line: kernel slab (guest) and the FUSE daemon's peak RSS."""
        mem = []
        for fs in self.fses:
            def figures(prefix):
                return [v for (f, b), vs in self.samples.items()
                        if f == fs and b.startswith(prefix) for v in vs]
            slabs, rss = figures("mem-slab:"), figures("mem-fuse-peak-rss:")
            parts = ([f"slab max {max(slabs) / 1024:.0f} MiB"] if slab and slabs else []) + \
                ([f"FUSE daemon peak RSS {max(rss) / 1024:.0f} MiB"] if rss else [])
            if parts:
                mem.append(f"{fs}: " + ", ".join(parts))
        return mem

    def check(self):
        """make check's figures: (passed, failed), printing what is missing."""
        passed = failed = 0
        for fs in self.fses:
            wanted = list(FIO) + ["meta-create-1t", "meta-unlink-4t", "untar", "git-clone"]
            if fs == "fuse-xv6fs":
                wanted.append("mem-fuse-peak-rss:untar")
            for bench in wanted:
                if self.samples.get((fs, bench)):
                    passed += 1
                else:
                    print(f"not ok: {self.label}: no {bench} figure for {fs}")
                    failed += 1
        pressure = self.pressure()
        for fs, checks in PRESSURE.get(self.label, {}).items():
            if fs not in self.fses:
                continue
            got = pressure.get(fs, {}).get("checks", {})
            for name in checks:
                c = got.get(name)
                if c and c["ok"]:
                    passed += 1
                elif c:
                    print(f"not ok: {self.label}: {fs} memory {name} "
                          f"{c.get('value')} over {c.get('limit')} {c['unit']}")
                    failed += 1
                else:
                    print(f"not ok: {self.label}: no memory {name} figure for {fs}")
                    failed += 1
        return passed, failed


def upgrade_pause(run):
    pauses = run.samples.get(("xv6fs", "upgrade-pause"))
    op = run.samples.get(("xv6fs", "upgrade-load-median-op"))
    if not pauses:
        return None
    q = statistics.quantiles(pauses, n=100, method="inclusive") if len(pauses) > 1 \
        else [pauses[0]] * 99
    return {"p50": statistics.median(pauses), "p99": q[98],
            "median_op_ns": op[0] if op else None, "switches": len(pauses)}


def plot(runs, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report.py: no matplotlib: no plot", file=sys.stderr)
        return
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 5 * len(runs)), squeeze=False)
    for ax, (title, run) in zip(axes[:, 0], runs):
        others = [fs for fs in run.fses if fs != BASE]
        width = 0.8 / max(len(others), 1)
        for i, fs in enumerate(others):
            ys = [run.ratio_of(fs, bench) or 0 for bench in run.benches]
            # One colour a file system in both panels.
            color = f"C{COLOURS.index(fs)}" if fs in COLOURS else None
            ax.bar([x + i * width for x in range(len(run.benches))], ys, width, label=fs,
                   color=color)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([x + width * (len(others) - 1) / 2 for x in range(len(run.benches))])
        ax.set_xticklabels(run.benches, rotation=45, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("speed relative to ext4 data=ordered (log)")
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description="the report of make bench")
    ap.add_argument("results", help="the guest's results, '-' for none")
    ap.add_argument("outdir")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--fs", help="the guest's file systems, in table order")
    ap.add_argument("--host", help="the host's results (host.sh)")
    ap.add_argument("--host-fs", help="the host's file systems, in table order")
    args = ap.parse_args()
    guest = Run(args.results, args.fs.split() if args.fs else None, "guest") \
        if args.results != "-" else None
    host = Run(args.host, args.host_fs.split() if args.host_fs else None, "host") \
        if args.host else None

    report, text, runs = {}, "", []
    if guest:
        report = guest.json(GUEST_WHERE)
        report["pressure"] = guest.pressure()
        pause = upgrade_pause(guest)
        if pause:
            report["upgrade_pause_ns"] = pause
        text += ("## QEMU guest (TCG)\n\nSpeed relative to ext4 (data=ordered) in the same "
                 "guest run (**ratio**, > 1 is faster), then the median [min–max] of the "
                 "repetitions. The guest runs under TCG: compare ratios, not figures.\n\n" +
                 guest.table() + "\n")
        mem = guest.memory()
        if mem:
            text += "\nMemory after the benchmarks: " + "; ".join(mem) + ".\n"
        text += guest.pressure_text()
        if pause:
            text += (f"\nLive upgrade pause under load (kernel xv6fs, {pause['switches']} "
                     f"switches): p50 {pause['p50'] / 1e3:.0f} µs, p99 "
                     f"{pause['p99'] / 1e3:.0f} µs")
            if pause["median_op_ns"]:
                text += (f" ({pause['p50'] / pause['median_op_ns']:.1f}× and "
                         f"{pause['p99'] / pause['median_op_ns']:.1f}× the load's median "
                         "operation)")
            text += ".\n"
        runs.append(("QEMU guest (TCG)", guest))
    if host:
        report["host"] = host.json(HOST_WHERE)
        report["host"]["pressure"] = host.pressure()
        text += ("\n" if text else "") + (
            "## host (no emulation)\n\nThe same benchmarks on the host: speed relative to "
            "host ext4 (data=ordered, on a loop device over an image file) in the same host "
            "run (**ratio**, > 1 is faster), then the median [min–max] of the repetitions. "
            "No live-upgrade pause (the host kernel has no Bento modules).\n\n")
        if host.machine:
            text += "Host: " + "; ".join(host.machine) + ".\n\n"
        text += host.table() + "\n"
        mem = host.memory(slab=False)
        if mem:
            text += "\nMemory: " + "; ".join(mem) + ".\n"
        text += host.pressure_text()
        runs.append(("host (no emulation)", host))
    os.makedirs(args.outdir, exist_ok=True)
    with open(os.path.join(args.outdir, "bench.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(args.outdir, "bench.md"), "w") as f:
        f.write(text)
    print(text)

    if not args.check:
        if runs:
            plot(runs, os.path.join(args.outdir, "bench.png"))
        return 0

    passed = failed = 0
    for _, run in runs:
        p, f = run.check()
        passed, failed = passed + p, failed + f
    if guest and "xv6fs" in guest.fses:
        if "upgrade_pause_ns" in report:
            passed += 1
        else:
            print("not ok: guest: no upgrade pause figure")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
