#!/usr/bin/env python3
"""The pytrec_eval side of bench/eval_vs_pytrec_eval.sh: parse a TREC qrels and run the way
BEIR-style scripts do, score ndcg@10, mrr@10, recall@100, map and p@10, and print the means
as JSON. MRR@10 is recip_rank over each ranking cut to its top 10, as BEIR computes it.

Usage: python bench/eval_pytrec.py QRELS RUN
"""

import heapq
import json
import sys

import pytrec_eval


def main():
    qrels, run = {}, {}
    with open(sys.argv[1]) as f:
        for line in f:
            q, _, d, g = line.split()
            qrels.setdefault(q, {})[d] = int(g)
    with open(sys.argv[2]) as f:
        for line in f:
            q, _, d, _, s, _ = line.split()
            run.setdefault(q, {})[d] = float(s)
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map", "P.10"})
    scores = ev.evaluate(run)
    top10 = {q: dict(heapq.nlargest(10, docs.items(), key=lambda kv: kv[1]))
             for q, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    n = len(scores)
    means = {
        "ndcg@10": sum(v["ndcg_cut_10"] for v in scores.values()) / n,
        "mrr@10": sum(v["recip_rank"] for v in rr.values()) / n,
        "recall@100": sum(v["recall_100"] for v in scores.values()) / n,
        "map": sum(v["map"] for v in scores.values()) / n,
        "p@10": sum(v["P_10"] for v in scores.values()) / n,
    }
    print(json.dumps({"overall": means, "num_queries": n}))


if __name__ == "__main__":
    main()
