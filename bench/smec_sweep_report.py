#!/usr/bin/env python3
"""Table of bench/smec_sweep.sh: per arm, dev nDCG@10 / Recall@100 at 96 and 48 dims, the
difference from its base with the paired test's p, and the head's training time.
Usage: smec_sweep_report.py SWEEP_DIR"""
import json
import sys
from pathlib import Path

s = Path(sys.argv[1])


def load(p):
    return json.loads(Path(p).read_text())


print("\n## SMEC settings on dev (XQuAD-R paragraphs, pooled): nDCG@10 / Recall@100\n")
print("| arm | base | train s | 96 | 48 |")
print("|---|---|---|---|---|")
for line in (s / "arms.txt").read_text().splitlines():
    name, base = line.split()
    rows = {r["dim"]: r["report"]["overall"] for r in load(s / "eval" / name / "dims.json")}
    cells = []
    for d in (96, 48):
        m = rows[d]
        cell = f"{m['ndcg@10']:.4f} / {m['recall@100']:.4f}"
        cmp = s / "eval" / name / f"vs-base-{d}.json"
        if cmp.exists():
            c = {r["metric"]: r for r in load(cmp)["comparisons"]}["ndcg@10"]
            cell += f" ({c['diff']:+.4f}, p {c['p_value']:.3f})"
        cells.append(cell)
    secs = load(s / "heads" / name / "model" / "compress.json")["seconds"]
    print(f"| {name} | {base} | {secs:.0f} | " + " | ".join(cells) + " |")
print()
print((s / "load.txt").read_text())
