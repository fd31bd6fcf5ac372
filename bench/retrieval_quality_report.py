#!/usr/bin/env python3
"""Tables of bench/retrieval_quality.sh: per task (pooled, mono, lareqa), each arm's nDCG@10,
MRR@10, Recall@100 and MAP with the difference from zero-shot and the paired test's p; the
monolingual nDCG@10 per language (marked * where significantly below zero-shot, p < 0.05);
and the pooled first-hit breakdown.
Usage: retrieval_quality_report.py DIR ARM..."""
import json
import sys
from pathlib import Path

w = Path(sys.argv[1])
arms = [a for a in sys.argv[2:] if (w / "eval" / a / "pooled" / "metrics.json").exists()]
METRICS = ["ndcg@10", "mrr@10", "recall@100", "map"]


def load(p):
    return json.loads(Path(p).read_text())


def comparisons(arm, task):
    p = w / "eval" / arm / task / "vs-zero-shot.json"
    if not p.exists():
        return None, None
    c = load(p)
    overall = {r["metric"]: r for r in c["comparisons"]}
    per = {l: {r["metric"]: r for r in rows} for l, rows in c.get("per_lang", {}).items()}
    return overall, per


for task in ["pooled", "mono", "lareqa"]:
    have = [a for a in arms if (w / "eval" / a / task / "metrics.json").exists()]
    if not have:
        continue
    print(f"\n## {task}: mean over test queries (diff against zero-shot, paired p)\n")
    print("| arm | " + " | ".join(METRICS) + " |")
    print("|---|" + "---|" * len(METRICS))
    for a in have:
        m = load(w / "eval" / a / task / "metrics.json")["overall"]
        cmp, _ = comparisons(a, task)
        cells = []
        for k in METRICS:
            cell = f"{m[k]:.4f}"
            if cmp and k in cmp:
                cell += f" ({cmp[k]['diff']:+.4f}, p {cmp[k]['p_value']:.4f})"
            cells.append(cell)
        print(f"| {a} | " + " | ".join(cells) + " |")
    langs = sorted(load(w / "eval" / have[0] / task / "metrics.json")["per_lang"].keys())
    print(f"\nnDCG@10 per query language ({task}; * significantly below zero-shot, p < 0.05)\n")
    print("| arm | " + " | ".join(langs) + " | mean |")
    print("|---|" + "---|" * (len(langs) + 1))
    for a in have:
        per = load(w / "eval" / a / task / "metrics.json")["per_lang"]
        _, cmp = comparisons(a, task)
        cells = []
        for l in langs:
            v = per[l]["ndcg@10"]
            below = cmp and cmp[l]["ndcg@10"]["diff"] < 0 and cmp[l]["ndcg@10"]["p_value"] < 0.05
            cells.append(f"{v:.3f}{'*' if below else ''}")
        mean = sum(per[l]["ndcg@10"] for l in langs) / len(langs)
        print(f"| {a} | " + " | ".join(cells) + f" | {mean:.3f} |")
    print(f"\nfirst hit ({task})\n")
    kinds = [("relevant, query's language", "relevant_same_lang"),
             ("relevant, another language", "relevant_other_lang"),
             ("wrong, query's language", "wrong_same_lang"),
             ("wrong, another language", "wrong_other_lang"),
             ("wrong, same article", "wrong_same_group"),
             ("wrong, another article", "wrong_other_group")]
    print("| first hit | " + " | ".join(have) + " |")
    print("|---|" + "---|" * len(have))
    for name, key in kinds:
        cells = []
        for a in have:
            f = load(w / "eval" / a / task / "metrics.json").get("first_hit")
            if not f:
                cells.append("")
                continue
            o = f["overall"]
            cells.append(f"{o[key]} ({100 * o[key] / max(o['queries'], 1):.1f}%)")
        print(f"| {name} | " + " | ".join(cells) + " |")
print()
print((w / "load.txt").read_text())
