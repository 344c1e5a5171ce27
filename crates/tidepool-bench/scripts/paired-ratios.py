#!/usr/bin/env python3
"""Per-point ratios of one pool against another, from the --json output of
pool-overhead or pg-throughput: the ratio is taken inside each repeat (the
two pools ran back to back) and the table shows its median and the lowest
and highest repeat.

    scripts/paired-ratios.py overhead.json tidepool-balanced tidepool
    scripts/paired-ratios.py pg.json tidepool-balanced tidepool
"""
import json
import statistics
import sys
from collections import defaultdict


def rows(doc):
    """(point, pool, repeat, throughput, p99 ns) for either benchmark."""
    if isinstance(doc, dict):  # pool-overhead
        for s in doc["samples"]:
            point = f"size {s['size']}, {s['tasks']} tasks"
            yield point, s["pool"], s["repeat"], s["throughput"], s["p99_ns"]
    else:  # pg-throughput
        for s in doc:
            sp = s["spec"]
            point = f"{sp['workload']}, size {sp['size']}, {sp['concurrency']} tasks"
            yield point, sp["pool"], s["repeat"], s["tps"], s.get("p99_ns")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    path, a, b = sys.argv[1:]
    with open(path) as f:
        doc = json.load(f)
    by = defaultdict(dict)
    for point, pool, rep, tps, p99 in rows(doc):
        by[(point, rep)][pool] = (tps, p99)
    ratios = defaultdict(lambda: ([], []))
    for (point, _rep), pools in by.items():
        if a in pools and b in pools:
            (ta, pa), (tb, pb) = pools[a], pools[b]
            ratios[point][0].append(ta / tb)
            if pa and pb:
                ratios[point][1].append(pa / pb)

    def fmt(v):
        if not v:
            return "–"
        return f"{statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f})"

    print(f"| point | throughput, {a} ÷ {b} | p99, {a} ÷ {b} | repeats |")
    print("|---|---:|---:|---:|")
    for point in sorted(ratios):
        t, p = ratios[point]
        print(f"| {point} | {fmt(t)} | {fmt(p)} | {len(t)} |")


if __name__ == "__main__":
    main()
