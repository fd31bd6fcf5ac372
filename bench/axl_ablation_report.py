#!/usr/bin/env python3
"""Tables of bench/axl_ablation.sh: per arm and language nDCG@10 and MRR@10 with the paired
test against ict-p; generated, kept and rejected negatives (mining, and each refresh of the
loop); wall times; and generated negatives the dynamic arm's last refresh kept or rejected,
in every language of the split.
Usage: axl_ablation_report.py AXL_DIR ARM..."""
import json
import random
import sys
from pathlib import Path

axl = Path(sys.argv[1])
arms = sys.argv[2:]
METRICS = ["ndcg@10", "mrr@10"]


def load(p):
    return json.loads(Path(p).read_text())


def lines(p):
    return [json.loads(l) for l in Path(p).read_text().splitlines() if l.strip()]


reports = {a: load(axl / "eval" / a / "metrics.json") for a in arms}
langs = sorted(next(iter(reports.values()))["per_lang"])
print("## Test nDCG@10 and MRR@10, difference from ict-p and paired p\n")
head = ["arm", "metric", "all"] + langs
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for a in arms:
    rep = reports[a]
    cmp = axl / "eval" / a / "vs-ict-p.json"
    c = load(cmp) if cmp.exists() else None
    for m in METRICS:
        def cell(value, rows):
            r = next((r for r in rows if r["metric"] == m), None) if rows else None
            return f"{value:.4f}" + (f" ({r['diff']:+.4f}, p {r['p_value']:.3f})" if r else "")
        cells = [a, m, cell(rep["overall"][m], c and c["comparisons"])]
        cells += [cell(rep["per_lang"][l][m], c and c.get("per_lang", {}).get(l)) for l in langs]
        print("| " + " | ".join(cells) + " |")

print("\n## Negatives and time\n")
stats = load(str(axl / "all.perturb.jsonl") + ".stats.json")
written = stats.get("counters", {}).get("perturb", {})
print("Mining (every train query of the split): " + ", ".join(f"{k} {v}" for k, v in sorted(written.items()))
      + f"; kept after dedup and the margin filter: {stats.get('kept', {}).get('perturb', 0)}"
      + (f"; {float((axl / 'mine_seconds').read_text()):.0f} s" if (axl / "mine_seconds").exists() else "") + ".\n")
print("| arm | refreshes | judged per refresh | kept, first → last refresh (by kind) | dropped, first → last (by reason) | mean kept m, first → last | refresh s | train s |")
print("|---|---|---|---|---|---|---|---|")
for a in arms:
    recs = [r["adversarial"] for r in lines(axl / a / "metrics.jsonl") if "adversarial" in r]
    train_s = float((axl / a / "train_seconds").read_text()) if (axl / a / "train_seconds").exists() else float("nan")
    if not recs:
        print(f"| {a} | 0 | | | | | | {train_s:.0f} |")
        continue
    fmt = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "0"
    # The first and the last refresh (the loop's start and where it ended).
    ends = [recs[0], recs[-1]]
    kept = " → ".join(fmt(r["kept"]) for r in ends)
    dropped = " → ".join(fmt(r["dropped"]) for r in ends)
    means = " → ".join("–" if r["mean_kept_margin"] is None else f"{r['mean_kept_margin']:+.4f}" for r in ends)
    secs = sum(r["seconds"] for r in recs)
    print(f"| {a} | {len(recs)} | {recs[0]['judged']} | {kept} | {dropped} | {means} | {secs:.0f} | {train_s:.0f} |")

# Examples: the dynamic arm's last refresh, kept and rejected, per language.
arm = "dynamic" if "dynamic" in arms else None
if arm:
    ck = axl / arm / "checkpoints"
    latest = (ck / "latest").read_text().strip()
    state = load(ck / latest / "state.json")
    dropped = {int(k): set(v) for k, v in state.get("adversarial", {}).get("dropped", {}).items()}
    examples = lines(axl / "train.jsonl")
    rows = []
    for i, e in enumerate(examples):
        for k, n in enumerate(e["negative_passages"]):
            if n.get("source") != "perturb":
                continue
            rows.append((e.get("lang") or n.get("lang") or "?", "rejected" if k in dropped.get(i, ()) else "kept",
                         e["query"], n.get("perturbation", "")))
    rng = random.Random(7)
    rng.shuffle(rows)
    print("\n## Generated negatives, kept and rejected by the dynamic arm's last refresh\n")
    print("| lang | verdict | query | perturbation |")
    print("|---|---|---|---|")
    shown = {}
    for lang, verdict, q, p in rows:
        if shown.get((lang, verdict), 0) >= 2:
            continue
        shown[(lang, verdict)] = shown.get((lang, verdict), 0) + 1
        cell = lambda s: s.replace("|", "\\|")[:90]
        print(f"| {lang} | {verdict} | {cell(q)} | {cell(p)} |")
