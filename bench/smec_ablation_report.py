#!/usr/bin/env python3
"""Tables of bench/smec_ablation.sh: per task, nDCG@10 and Recall@100 of every arm at every
dim (with the paired test against MRL at 96 and 48 dims), nDCG@10 per language at 96 dims,
the head's training time, and the index size per dim.
Usage: smec_ablation_report.py DIR ARM..."""
import json
import sys
from pathlib import Path

w = Path(sys.argv[1])
arms = sys.argv[2:]


def load(p):
    return json.loads(Path(p).read_text())


def seconds(arm):
    p = w / "heads" / arm / "model" / "compress.json"
    return f"{load(p)['seconds']:.1f}" if p.exists() else "(encoder training)"


for task in ["paragraph", "lareqa"]:
    dims = [r["dim"] for r in load(w / "eval" / "truncate" / task / "dims.json")]
    print(f"\n## {task}: nDCG@10 / Recall@100 by dim (diff and p against mrl at 96 and 48)\n")
    print("| arm | train s | " + " | ".join(str(d) for d in dims) + " |")
    print("|---|---|" + "---|" * len(dims))
    for a in arms:
        rows = {r["dim"]: r["report"]["overall"] for r in load(w / "eval" / a / task / "dims.json")}
        cells = []
        for d in dims:
            m = rows[d]
            cell = f"{m['ndcg@10']:.4f} / {m['recall@100']:.4f}"
            cmp = w / "eval" / a / task / f"vs-mrl-{d}.json"
            if cmp.exists():
                c = {r["metric"]: r for r in load(cmp)["comparisons"]}["ndcg@10"]
                cell += f" ({c['diff']:+.4f}, p {c['p_value']:.3f})"
            cells.append(cell)
        print(f"| {a} | {seconds(a)} | " + " | ".join(cells) + " |")
    print(f"\nnDCG@10 per query language at 96 dims ({task})\n")
    langs = sorted(load(w / "eval" / "mrl" / task / "dim-96" / "metrics.json")["per_lang"].keys())
    print("| arm | " + " | ".join(langs) + " |")
    print("|---|" + "---|" * len(langs))
    for a in arms:
        per = load(w / "eval" / a / task / "dim-96" / "metrics.json")["per_lang"]
        print(f"| {a} | " + " | ".join(f"{per[l]['ndcg@10']:.3f}" for l in langs) + " |")
    sizes = {r["dim"]: r["index_bytes"] for r in load(w / "eval" / "truncate" / task / "dims.json")}
    print("\nindex size (f32): " + ", ".join(f"{d}: {sizes[d] / 2**20:.2f} MiB" for d in dims))
int8 = w / "eval" / "smrl-int8" / "paragraph" / "dims.json"
if int8.exists():
    f32 = {r["dim"]: r for r in load(w / "eval" / "smrl" / "paragraph" / "dims.json")}
    print("\n## smrl's index in int8 against f32 (paragraph)\n")
    print("| dim | nDCG@10 f32 | nDCG@10 int8 | size f32 | size int8 |")
    print("|---|---|---|---|---|")
    for r in load(int8):
        a = f32[r["dim"]]
        print(f"| {r['dim']} | {a['report']['overall']['ndcg@10']:.4f} | "
              f"{r['report']['overall']['ndcg@10']:.4f} | {a['index_bytes'] / 2**20:.2f} MiB | "
              f"{r['index_bytes'] / 2**20:.2f} MiB |")
print()
print((w / "load.txt").read_text())
