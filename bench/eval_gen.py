#!/usr/bin/env python3
"""Seeded benchmark data for bench/eval_vs_pytrec_eval.sh: a TREC run of Q queries x D
documents and qrels with graded judgements (1-5 relevant per query, most of them retrieved
at a random depth, plus 3 documents judged 0). Standard library only.

Usage: python bench/eval_gen.py OUT_DIR [QUERIES] [DOCS_PER_QUERY]
"""

import random
import sys
from pathlib import Path

SEED = 1234


def main():
    out = Path(sys.argv[1])
    nq = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    nd = int(sys.argv[3]) if len(sys.argv) > 3 else 1_000
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    with open(out / "run.trec", "w") as run, open(out / "qrels.trec", "w") as qrels:
        for q in range(nq):
            qid = f"q{q}"
            docs = rng.sample(range(5_000_000), nd)
            scores = sorted((rng.random() * 40.0 for _ in range(nd)), reverse=True)
            run.write("".join(
                f"{qid} Q0 doc{d} {r + 1} {s!r} bench\n"
                for r, (d, s) in enumerate(zip(docs, scores))))
            judged = {}
            for p in rng.sample(range(nd), rng.randint(1, 5)):
                d = f"doc{docs[p]}" if rng.random() < 0.8 else f"unret{q}_{p}"
                judged[d] = rng.randint(1, 3)
            for p in rng.sample(range(nd), 3):
                judged.setdefault(f"doc{docs[p]}", 0)
            qrels.write("".join(f"{qid} 0 {d} {g}\n" for d, g in judged.items()))


if __name__ == "__main__":
    main()
