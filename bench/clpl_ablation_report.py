#!/usr/bin/env python3
"""Tables of bench/clpl_ablation.sh: per arm the overall metrics with the paired test against
InfoNCE, nDCG@10 per language (with its p-value), the share of negatives with a query, seconds
per step, wall time and peak RSS of training. Usage: clpl_ablation_report.py DIR ARM..."""
import json
import re
import sys
from pathlib import Path

w = Path(sys.argv[1])
arms = sys.argv[2:]
METRICS = ["ndcg@10", "mrr@10", "recall@100", "map"]


def load(p):
    return json.loads(Path(p).read_text())


def train_costs(arm):
    log = (w / f"{arm}.train.log").read_text() if (w / f"{arm}.train.log").exists() else ""
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log)
    wall = re.search(r"Elapsed \(wall clock\) time.*: ([\d:.]+)", log)
    steps = [json.loads(l) for l in (w / arm / "metrics.jsonl").read_text().splitlines()
             if '"loss"' in l]
    # Seconds per step from the throughput of each step (16 queries), first step excluded.
    sps = [16 / s["examples_per_s"] for s in steps[1:]] or [0]
    stats = {}
    for s in steps:
        for k, v in s.get("loss_stats", {}).items():
            stats[k] = stats.get(k, 0) + v
    return (rss and int(rss.group(1)) / 1024, wall and wall.group(1),
            sum(sps) / len(sps), stats, len(steps))


zs = load(w / "zero-shot" / "metrics.json")
print("| arm | nDCG@10 | MRR@10 | R@100 | MAP | s/step | wall | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
print(f"| zero-shot | " + " | ".join(f"{zs['overall'][m]:.4f}" for m in METRICS) + " | | | |")
for a in arms:
    m = load(w / a / "test" / "metrics.json")["overall"]
    cells = []
    if a == "infonce":
        cells = [f"{m[k]:.4f}" for k in METRICS]
    else:
        c = {r["metric"]: r for r in load(w / a / "vs-infonce.json")["comparisons"]}
        cells = [f"{m[k]:.4f} ({c[k]['diff']:+.4f}, p {c[k]['p_value']:.4f})" for k in METRICS]
    rss, wall, sps, stats, n = train_costs(a)
    print(f"| {a} | " + " | ".join(cells) + f" | {sps:.2f} | {wall} | {rss:.0f} |")

print()
langs = sorted(load(w / "infonce" / "test" / "metrics.json")["per_lang"].keys())
print("nDCG@10 per query language (p against infonce in brackets)\n")
print("| arm | " + " | ".join(langs) + " |")
print("|---|" + "---|" * len(langs))
for a in ["zero-shot"] + arms:
    rep = zs if a == "zero-shot" else load(w / a / "test" / "metrics.json")
    ps = {}
    if a not in ("zero-shot", "infonce"):
        ps = {l: {r["metric"]: r for r in rows} for l, rows in
              load(w / a / "vs-infonce.json").get("per_lang", {}).items()}
    cells = []
    for l in langs:
        v = rep["per_lang"][l]["ndcg@10"]
        p = ps.get(l, {}).get("ndcg@10")
        cells.append(f"{v:.3f}" + (f" ({p['p_value']:.2f})" if p else ""))
    print(f"| {a} | " + " | ".join(cells) + " |")

print()
for a in arms:
    _, _, _, stats, n = train_costs(a)
    if stats:
        print(f"{a}: loss stats summed over {n} steps: {stats}")
mine = load(w / "train.jsonl.stats.json") if (w / "train.jsonl.stats.json").exists() else None
if mine and "negative_queries" in mine:
    print(f"negatives with their own query (from qrels): {mine['negative_queries']}")
