#!/usr/bin/env python3
"""Generate the evaluation parity fixtures in tests/fixtures/eval/.

Writes a seeded TREC qrels file and run file full of the cases where evaluators disagree
(tied scores, scores equal only in float32, -0.0 vs 0.0, graded and negative relevance,
non-ASCII docids, short lists, queries missing on either side, a query with no relevant
document), a queries.jsonl with languages, and expected.json holding pytrec_eval's values
for every metric polydense-eval supports at k in {1, 3, 5, 10, 100}.

Usage: python scripts/make_eval_fixtures.py [OUT_DIR]
Needs: pip install -r scripts/requirements-eval.txt
"""

import json
from importlib import metadata
import random
import sys
from pathlib import Path

import numpy as np
import pytrec_eval

SEED = 20261122
CUTOFFS = [1, 3, 5, 10, 100]
LANGS = ["de", "th", "zh"]


def docid(rng, i):
    # Mixed lengths and prefixes make byte-order tie-breaking matter; some are non-ASCII so
    # that byte order (not UTF-16 or locale order) is exercised.
    style = i % 5
    if style == 0:
        return f"d{i}"
    if style == 1:
        return f"doc-{i:05d}"
    if style == 2:
        return f"D{i}"
    if style == 3:
        return f"dé{i}"
    return f"文{i}"


def make(rng):
    qrels, run = {}, {}
    for n in range(1, 61):
        qid = f"q{n:03d}"
        pool = [docid(rng, rng.randrange(0, 400)) for _ in range(rng.randrange(0, 160))]
        pool = list(dict.fromkeys(pool))  # unique, keeps order
        mode = n % 6
        scores = []
        for _ in pool:
            if mode == 0:
                s = round(rng.uniform(0, 2), 1)  # many exact ties
            elif mode == 1:
                s = 1.0 + rng.choice([0.0, 1e-12, 2e-12, -1e-12])  # ties only in float32
            elif mode == 2:
                s = rng.choice([0.0, -0.0, 0.5, -0.5])  # signed zeros tie
            elif mode == 3:
                s = rng.gauss(0, 10)  # negative scores
            else:
                s = rng.uniform(0, 100)
            scores.append(float(s))
        run[qid] = dict(zip(pool, scores))
        judged = {}
        for d in pool:
            if rng.random() < 0.15:
                judged[d] = rng.choice([-1, 0, 1, 1, 2, 3])
        for _ in range(rng.randrange(0, 4)):  # relevant but never retrieved
            judged[f"unretrieved-{rng.randrange(10_000)}"] = rng.choice([1, 2, 3])
        if not any(g >= 1 for g in judged.values()) and pool:
            judged[pool[-1]] = 1
        qrels[qid] = judged
    # Queries judged but with no relevant document.
    qrels["q001"] = {d: rng.choice([0, -1]) for d in list(run["q001"])[:5]} or {"x": 0}
    # Judged, relevant documents exist, but no line in the run.
    qrels["q900"] = {"d1": 1, "d2": 2}
    qrels["q901"] = {"dé3": 3}
    # In the run, not judged.
    run["q950"] = {"d1": 1.0, "d2": 0.5}
    # A one-document list, where every cutoff exceeds the list.
    qrels["q002"] = {"d7": 2, "d8": 1}
    run["q002"] = {"d8": 0.25}
    return qrels, run


def trec_eval_ranks(docs):
    """Documents in trec_eval order: float32 score descending, docid bytes descending."""
    items = [(np.float32(s) + np.float32(0.0), d.encode()) for d, s in docs.items()]
    items.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [d.decode() for _, d in items]


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/eval")
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    qrels, run = make(rng)

    with open(out / "qrels.txt", "w", encoding="utf-8") as f:
        for qid in sorted(qrels):
            for d, g in qrels[qid].items():
                f.write(f"{qid} 0 {d} {g}\n")
    # The rank column is deliberately wrong (reversed): evaluators must ignore it.
    with open(out / "run.txt", "w", encoding="utf-8") as f:
        for qid in sorted(run):
            docs = list(run[qid].items())
            rng.shuffle(docs)
            for i, (d, s) in enumerate(docs):
                f.write(f"{qid}\tQ0\t{d}\t{len(docs) - i}\t{s!r}\tfixture\n")
    lang_of = {}
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, qid in enumerate(sorted(set(qrels) | set(run))):
            line = {"_id": qid, "text": f"query {qid}"}
            if i % 7 != 3:  # some queries carry no language ("und" in reports)
                line["lang"] = lang_of[qid] = LANGS[i % len(LANGS)]
            f.write(json.dumps(line, ensure_ascii=False) + "\n")

    # Read both files back exactly as a user's evaluation script would.
    qrels_in, run_in = {}, {}
    for line in open(out / "qrels.txt", encoding="utf-8"):
        q, _, d, g = line.split()
        qrels_in.setdefault(q, {})[d] = int(g)
    for line in open(out / "run.txt", encoding="utf-8"):
        q, _, d, _, s, _ = line.split()
        run_in.setdefault(q, {})[d] = float(s)

    cut = ",".join(map(str, CUTOFFS))
    measures = {f"ndcg_cut.{cut}", f"P.{cut}", f"recall.{cut}", f"map_cut.{cut}",
                f"success.{cut}", "map", "recip_rank"}
    raw = pytrec_eval.RelevanceEvaluator(qrels_in, measures).evaluate(run_in)

    queries = {}
    for qid, m in sorted(raw.items()):
        row = {"map": m["map"], "mrr": m["recip_rank"]}
        rr = m["recip_rank"]
        first = round(1 / rr) if rr > 0 else None
        for k in CUTOFFS:
            row[f"ndcg@{k}"] = m[f"ndcg_cut_{k}"]
            row[f"p@{k}"] = m[f"P_{k}"]
            row[f"recall@{k}"] = m[f"recall_{k}"]
            row[f"map@{k}"] = m[f"map_cut_{k}"]
            row[f"success@{k}"] = m[f"success_{k}"]
            # BEIR's MRR@k: recip_rank of the ranking cut at k, i.e. 1/r when the first
            # relevant document sits at rank r <= k.
            row[f"mrr@{k}"] = rr if first is not None and first <= k else 0.0
        queries[qid] = row
    # Cross-check the derived MRR@k by truncating in trec_eval order and asking pytrec_eval.
    for k in CUTOFFS:
        cut_run = {q: {d: run_in[q][d] for d in trec_eval_ranks(run_in[q])[:k]} for q in run_in}
        rr_k = pytrec_eval.RelevanceEvaluator(qrels_in, {"recip_rank"}).evaluate(cut_run)
        for q, v in rr_k.items():
            assert abs(v["recip_rank"] - queries[q][f"mrr@{k}"]) < 1e-15, (q, k)

    names = list(next(iter(queries.values())).keys())
    means = {n: sum(queries[q][n] for q in sorted(queries)) / len(queries) for n in names}
    means_zero = {n: sum(queries.get(q, {}).get(n, 0.0) for q in sorted(qrels_in)) / len(qrels_in)
                  for n in names}
    per_lang, per_lang_n = {}, {}
    for lang in sorted(set(lang_of.get(q, "und") for q in queries)):
        qs = [q for q in sorted(queries) if lang_of.get(q, "und") == lang]
        per_lang[lang] = {n: sum(queries[q][n] for q in qs) / len(qs) for n in names}
        per_lang_n[lang] = len(qs)
    expected = {
        "generator": "scripts/make_eval_fixtures.py",
        "reference": f"pytrec_eval-terrier {metadata.version('pytrec-eval-terrier')}",
        "seed": SEED,
        "metrics": names,
        "queries": queries,
        "means": means,
        "num_queries": len(queries),
        "per_lang": per_lang,
        "num_queries_per_lang": per_lang_n,
        "means_missing_as_zero": means_zero,
        "num_queries_missing_as_zero": len(qrels_in),
    }
    with open(out / "expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {out}: {len(qrels_in)} judged queries, {len(run_in)} in the run, "
          f"{len(queries)} evaluated, {len(names)} metrics")


if __name__ == "__main__":
    main()
