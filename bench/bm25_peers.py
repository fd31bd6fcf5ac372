"""Times bm25s and rank_bm25 on the tokens bench_bm25 wrote, and compares every system's
top 10 with the others'. Called by bench/bm25.sh with WORKDIR, K and polydense's timing line;
reads WORKDIR/{corpus,queries}.tok and WORKDIR/top10.polydense."""
import math
import os
import re
import sys
import time

import numpy as np

work, k, rust_line = sys.argv[1], int(sys.argv[2]), sys.argv[3]
K1, B = 0.9, 0.4


def read_tok(path):
    ids, toks = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            i, _, t = line.rstrip("\n").partition("\t")
            ids.append(i)
            toks.append(t.split())
    return ids, toks


doc_ids, corpus = read_tok(f"{work}/corpus.tok")
q_ids, queries = read_tok(f"{work}/queries.tok")
top10 = {}


def best_of(fn, n=3):
    best, out = float("inf"), None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def report(name, index_s, search_s):
    print(
        f"{name}: index {len(corpus)} docs in {index_s:.3f}s = {len(corpus) / index_s:.0f} docs/s "
        f"(pre-tokenised); search {len(queries)} queries top-{k} in {search_s:.3f}s = "
        f"{len(queries) / search_s:.0f} queries/s"
    )
    return len(corpus) / index_s, len(queries) / search_s


rates = {}
m = re.search(r"= ([\d.]+) docs/s.*= ([\d.]+) queries/s", rust_line)
rates["polydense"] = (float(m.group(1)), float(m.group(2)))
with open(f"{work}/top10.polydense", encoding="utf-8") as f:
    for line in f:
        q, _, ids = line.rstrip("\n").partition("\t")
        top10.setdefault("polydense", {})[q] = ids.split()

# bm25s with Lucene's formula: the same idf and tf normalisation as polydense.
import bm25s

def bm25s_index():
    r = bm25s.BM25(k1=K1, b=B, method="lucene")
    r.index(corpus, show_progress=False)
    return r

idx_s, retriever = best_of(bm25s_index)
# bm25s cannot take an empty query; those get an empty top 10 on its side.
nonempty = [i for i, q in enumerate(queries) if q]

def bm25s_search():
    docs, _ = retriever.retrieve([queries[i] for i in nonempty], k=k, show_progress=False, n_threads=0)
    return docs

s_s, res = best_of(bm25s_search)
top10["bm25s"] = {q: [] for q in q_ids}
for row, i in zip(res, nonempty):
    top10["bm25s"][q_ids[i]] = [doc_ids[j] for j in row[:10]]
rates["bm25s"] = report("bm25s 0.3 (method=lucene, 1 thread)", idx_s, s_s)

from rank_bm25 import BM25Okapi


class LuceneIdf(BM25Okapi):
    """rank_bm25 with Lucene's idf, so its ranking can be compared with the others."""

    def _calc_idf(self, nd):
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


# rank_bm25 scores a query with a Python loop over every document, so it searches only the
# first RANK_BM25_QUERIES queries; its queries/s and its overlap are measured on those.
n_slow = int(os.environ.get("RANK_BM25_QUERIES", "1000"))
for name, cls in [("rank_bm25 (BM25Okapi)", BM25Okapi), ("rank_bm25 (Lucene idf)", LuceneIdf)]:
    idx_s, model = best_of(lambda: cls(corpus, k1=K1, b=B), n=1)

    def search():
        out = []
        for q in queries[:n_slow]:
            s = model.get_scores(q)
            part = np.argpartition(-s, min(k, len(s) - 1))[:k]
            # trec_eval's order, as polydense ranks: score descending, then docid descending.
            order = sorted(part, key=lambda j: doc_ids[j], reverse=True)
            order.sort(key=lambda j: -s[j])
            out.append([doc_ids[j] for j in order[:10] if s[j] > 0])
        return out

    s_s, res = best_of(search, n=1)
    top10[name] = dict(zip(q_ids, res))
    n_idx = len(corpus) / idx_s
    print(
        f"{name}: index {len(corpus)} docs in {idx_s:.3f}s = {n_idx:.0f} docs/s (pre-tokenised); "
        f"search {len(res)} queries top-{k} in {s_s:.3f}s = {len(res) / s_s:.0f} queries/s"
    )
    rates[name] = (n_idx, len(res) / s_s)

print()
names = list(top10)
for a in names:
    for b in names:
        if a < b:
            common = [q for q in q_ids if q in top10[a] and q in top10[b]]
            ov = np.mean([len(set(top10[a][q]) & set(top10[b][q])) / max(1, len(top10[a][q]), len(top10[b][q])) for q in common if top10[a][q] or top10[b][q]])
            print(f"top-10 overlap {a} vs {b}: {ov:.4f}")
print()
ours = rates["polydense"]
for n, (d, s) in rates.items():
    if n != "polydense":
        print(f"ratio polydense/{n}: indexing {ours[0] / d:.2f}x, search {ours[1] / s:.2f}x")
