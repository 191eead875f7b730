#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The report of make bench, from the guest's results.

Usage: report.py RESULTS OUTDIR [--check] [--fs "NAMES"]

RESULTS holds bench.jsonl (one measurement a line) and fio-FS-BENCH-REP.json (fio's
JSON output). Writes OUTDIR/bench.json (every figure: median, min, max, the samples),
OUTDIR/bench.md (a table of speed ratios to ext4 data=ordered, > 1 is faster) and,
unless --check, OUTDIR/bench.png (the ratios as bars; needs matplotlib). Prints the
table. --check (make check's smoke test): every benchmark of every file system must
have produced a number; ends with "N passed, N failed".
"""
import glob
import json
import os
import re
import statistics
import sys

BASE = "ext4-ordered"
# Benchmark -> (unit, higher is better). fio figures are throughput (MiB/s) or IOPS.
FIO = {
    "seqwrite": ("MiB/s", "write", "bw"),
    "seqread-cold": ("MiB/s", "read", "bw"),
    "randread-cold": ("IOPS", "read", "iops"),
    "randread-warm": ("IOPS", "read", "iops"),
    "randwrite": ("IOPS", "write", "iops"),
    "fsync-loop": ("IOPS", "write", "iops"),
}
ORDER = list(FIO) + [f"meta-{p}-{t}t" for t in (1, 4) for p in ("create", "stat", "unlink")] + [
    "untar"]
LOWER_IS_BETTER = {"untar"}


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


def main():
    args = sys.argv[1:]
    check = "--check" in args
    fses = None
    if "--fs" in args:
        fses = args[args.index("--fs") + 1].split()
        del args[args.index("--fs"):args.index("--fs") + 2]
    args = [a for a in args if a != "--check"]
    results, outdir = args[0], args[1]
    samples, units = load(results)
    fses = fses or sorted({fs for fs, _ in samples})
    benches = [b for b in ORDER if any((fs, b) in samples for fs in fses)]

    report = {"where": "QEMU guest under TCG (2 vCPUs): only ratios within this run mean "
                       "anything", "base": BASE, "benchmarks": {}}
    for (fs, bench), values in sorted(samples.items()):
        report["benchmarks"].setdefault(bench, {"unit": units.get(bench, "")})[fs] = \
            summary(values)
    pauses = samples.get(("xv6fs", "upgrade-pause"))
    op = samples.get(("xv6fs", "upgrade-load-median-op"))
    if pauses:
        q = statistics.quantiles(pauses, n=100, method="inclusive") if len(pauses) > 1 \
            else [pauses[0]] * 99
        report["upgrade_pause_ns"] = {"p50": statistics.median(pauses), "p99": q[98],
                                      "median_op_ns": op[0] if op else None,
                                      "switches": len(pauses)}
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "bench.json"), "w") as f:
        json.dump(report, f, indent=1)

    lines = ["| benchmark | unit | " + " | ".join(fses) + " |",
             "|---|---|" + "---|" * len(fses)]
    for bench in benches:
        base = samples.get((BASE, bench))
        base_m = statistics.median(base) if base else None
        cells = []
        for fs in fses:
            v = samples.get((fs, bench))
            if not v:
                cells.append("–")
                continue
            m = statistics.median(v)
            r = ratio(bench, m, base_m)
            spread = f" [{min(v):.4g}–{max(v):.4g}]" if len(v) > 1 else ""
            cells.append((f"**{r:.2f}×** " if r is not None and fs != BASE else "") +
                         f"{m:.4g}{spread}")
        lines.append(f"| {bench} | {units.get(bench, '')} | " + " | ".join(cells) + " |")
    mem = []
    for fs in fses:
        slab = [v for (f, b), vs in samples.items() if f == fs and b.startswith("mem-slab:")
                for v in vs]
        rss = [v for (f, b), vs in samples.items()
               if f == fs and b.startswith("mem-fuse-peak-rss:") for v in vs]
        if slab:
            mem.append(f"{fs}: slab max {max(slab) / 1024:.0f} MiB" +
                       (f", FUSE daemon peak RSS {max(rss) / 1024:.0f} MiB" if rss else ""))
    table = "\n".join(lines)
    text = ("Speed relative to ext4 (data=ordered) in the same guest run (**ratio**, > 1 "
            "is faster), then the median [min–max] of the repetitions.\n\n" + table + "\n")
    if mem:
        text += "\nMemory after the benchmarks: " + "; ".join(mem) + ".\n"
    if "upgrade_pause_ns" in report:
        u = report["upgrade_pause_ns"]
        text += (f"\nLive upgrade pause under load (kernel xv6fs, {u['switches']} switches): "
                 f"p50 {u['p50'] / 1e3:.0f} µs, p99 {u['p99'] / 1e3:.0f} µs")
        if u["median_op_ns"]:
            text += (f" ({u['p50'] / u['median_op_ns']:.1f}× and "
                     f"{u['p99'] / u['median_op_ns']:.1f}× the load's median operation)")
        text += ".\n"
    with open(os.path.join(outdir, "bench.md"), "w") as f:
        f.write(text)
    print(text)

    if not check:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("report.py: no matplotlib: no plot", file=sys.stderr)
            return 0
        others = [fs for fs in fses if fs != BASE]
        fig, ax = plt.subplots(figsize=(12, 5))
        width = 0.8 / max(len(others), 1)
        for i, fs in enumerate(others):
            ys = []
            for bench in benches:
                base, v = samples.get((BASE, bench)), samples.get((fs, bench))
                r = ratio(bench, statistics.median(v), statistics.median(base)) \
                    if base and v else None
                ys.append(r or 0)
            ax.bar([x + i * width for x in range(len(benches))], ys, width, label=fs)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks([x + width * (len(others) - 1) / 2 for x in range(len(benches))])
        ax.set_xticklabels(benches, rotation=45, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("speed relative to ext4 data=ordered (log)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, "bench.png"), dpi=100)
        return 0

    passed = failed = 0
    for fs in fses:
        for bench in list(FIO) + ["meta-create-1t", "meta-unlink-4t", "untar"]:
            if samples.get((fs, bench)):
                passed += 1
            else:
                print(f"not ok: no {bench} figure for {fs}")
                failed += 1
    if "xv6fs" in fses:
        if pauses:
            passed += 1
        else:
            print("not ok: no upgrade pause figure")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
