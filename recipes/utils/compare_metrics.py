#!/usr/bin/env python3
"""Print the systems of a metrics.json side by side, with ratios against a baseline.

    utils/compare_metrics.py [--baseline world] EXP/metrics.json

metrics.json is written by `vocoder evaluate --update` ({"sets": {SET: {"systems":
{NAME: {"summary": {...}}}}}}). For each set, one row per metric, one column per
system, and `NAME/baseline` ratios (below 1 means lower than the baseline; every
metric here is lower-is-better except f0_corr).
"""
import argparse
import json
import math
import sys


def fmt(v):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics_json")
    p.add_argument("--baseline", default="world", help="system the others are compared with")
    args = p.parse_args(argv)
    try:
        with open(args.metrics_json, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"compare_metrics.py: {args.metrics_json}: {exc}", file=sys.stderr)
        return 1
    for set_name, entry in sorted(doc.get("sets", {}).items()):
        systems = entry.get("systems", {})
        names = sorted(systems, key=lambda n: (n == args.baseline, n))
        metrics = sorted({m for s in systems.values() for m, v in s.get("summary", {}).items()
                          if m != "count" and isinstance(v, (int, float))})
        others = [n for n in names if n != args.baseline and args.baseline in systems]
        header = ["metric"] + names + [f"{n}/{args.baseline}" for n in others]
        rows = []
        for m in metrics:
            vals = [systems[n].get("summary", {}).get(m) for n in names]
            row = [m] + [fmt(v) for v in vals]
            base = systems.get(args.baseline, {}).get("summary", {}).get(m)
            for n in others:
                v = systems[n].get("summary", {}).get(m)
                ok = isinstance(v, (int, float)) and isinstance(base, (int, float)) and base not in (0,)
                row.append(fmt(v / base) if ok else "-")
            rows.append(row)
        counts = ", ".join(f"{n}: {systems[n].get('summary', {}).get('count', '?')} utts" for n in names)
        print(f"\n== {set_name} ({counts})")
        widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
        for r in [header] + rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
